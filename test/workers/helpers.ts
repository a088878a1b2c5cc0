// Calls the Worker (wrangler.toml's main, running in this workerd isolate) over its real fetch entry.
import { env, exports } from "cloudflare:workers";

export const origin = "https://api.tuneserve.test";

export interface CallOptions {
  token?: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
}

/** Sends one request to the Worker's default export, as Cloudflare would. */
export function call(method: string, path: string, opts: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  let body = opts.body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  }
  return exports.default.fetch(new Request(new URL(path, origin), { method, headers, body }));
}

/** Creates a tenant through the admin API and returns its id and first API key. */
export async function tenant(name = "acme"): Promise<{ id: string; key: string }> {
  const res = await call("POST", "/admin/v1/tenants", { token: env.TUNESERVE_ADMIN_TOKEN, json: { name } });
  if (res.status !== 201) throw new Error(`tenant create failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { id: string; api_key: string };
  return { id: body.id, key: body.api_key };
}

export interface ErrorEnvelope {
  code: string;
  message: string;
  param: string | null;
  request_id: string;
}

/** Asserts the error envelope with this status and code and returns it. */
export async function expectError(res: Response, status: number, code: string): Promise<ErrorEnvelope> {
  const body = (await res.json()) as { error?: ErrorEnvelope };
  if (res.status !== status || body.error?.code !== code) {
    throw new Error(`expected ${status} ${code}, got ${res.status} ${JSON.stringify(body)}`);
  }
  return body.error;
}
