// Starts the real API (libsql file + local blob store in a temp folder) for route tests, with helpers to call it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../api/src/app.js";
import { createNodeDeps } from "../../api/src/node-deps.js";
import type { Deps } from "../../api/src/deps.js";

export interface TestApi {
  deps: Deps;
  dataDir: string;
  /** Calls the app in-process (no socket) with a bearer token. */
  call(method: string, path: string, opts?: { token?: string; json?: unknown; body?: BodyInit; headers?: Record<string, string> }): Promise<Response>;
  /** A fetch that calls the app in-process, for a client (the openai package's `fetch` option) pointed at http://localhost. */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  admin: string;
  runner: string;
  /** Creates a tenant and returns its id and API key. */
  tenant(name?: string): Promise<{ id: string; key: string }>;
  /** Moves the injected clock forward (lease expiry without sleeping). */
  advance(seconds: number): void;
  close(): Promise<void>;
}

export async function startTestApi(env: Record<string, string> = {}): Promise<TestApi> {
  const dataDir = await mkdtemp(join(tmpdir(), "tuneserve-test-"));
  const { deps, close } = await createNodeDeps({ dataDir, publicUrl: "http://localhost", env: { ...env } });
  let offset = 0;
  const realNow = deps.now;
  deps.now = () => realNow() + offset;
  const app = createApp(deps);
  const call: TestApi["call"] = (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    // A streamed body needs duplex (fetch's rule), as a client sending it over time does.
    const duplex = body instanceof ReadableStream ? { duplex: "half" } : {};
    return Promise.resolve(app.request(path, { method, headers, body, ...duplex } as RequestInit));
  };
  const admin = deps.config.TUNESERVE_ADMIN_TOKEN!;
  return {
    deps,
    dataDir,
    call,
    fetch: (input, init) => Promise.resolve(app.request(input instanceof URL ? input.href : input, init)),
    admin,
    runner: deps.config.TUNESERVE_RUNNER_TOKEN!,
    async tenant(name = "acme") {
      const res = await call("POST", "/admin/v1/tenants", { token: admin, json: { name } });
      if (res.status !== 201) throw new Error(`tenant create failed: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { id: string; api_key: string };
      return { id: body.id, key: body.api_key };
    },
    advance(seconds) {
      offset += seconds;
    },
    async close() {
      close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Asserts the error envelope and returns it. */
export async function expectError(res: Response, status: number, code: string) {
  const body = (await res.json()) as { error: { code: string; message: string; param: string | null; request_id: string } };
  if (res.status !== status || body.error?.code !== code) {
    throw new Error(`expected ${status} ${code}, got ${res.status} ${JSON.stringify(body)}`);
  }
  return body.error;
}

/** How many objects the API's blob store holds under `prefix`. */
export async function blobCount(api: TestApi, prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of api.deps.blobs.list(prefix)) n++;
  return n;
}
