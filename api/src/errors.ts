// The one error envelope: {"error":{code,message,param,request_id}}. ErrorCode → HTTP status lives here only.
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const errorStatus = {
  invalid_request: 400,
  invalid_json: 400,
  invalid_file: 400,
  unauthorized: 401,
  forbidden: 403,
  tenant_suspended: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  lease_lost: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  quota_exceeded: 429,
  internal_error: 500,
  unavailable: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof errorStatus;

/** An error meant for the caller: its message is shown as is, so it names the thing and the fix. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
  get status(): ContentfulStatusCode {
    return errorStatus[this.code];
  }
}

export const notFound = (what: string, id: string, param: string | null = null) =>
  new ApiError("not_found", `${what} '${id}' not found`, param);

/** Renders any error as the envelope; unknown errors become a 500 without internals. */
export function errorResponse(c: Context, err: unknown): Response {
  const requestId = (c.get("requestId") as string | undefined) ?? "unknown";
  if (err instanceof ApiError) {
    for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
    return c.json({ error: { code: err.code, message: err.message, param: err.param, request_id: requestId } }, err.status);
  }
  console.error(`[${requestId}]`, err);
  return c.json({ error: { code: "internal_error", message: "internal error; quote the request_id when reporting it", param: null, request_id: requestId } }, 500);
}
