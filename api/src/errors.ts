// The one error envelope: {"error":{code,message,param,type,request_id}}. ErrorCode → HTTP status (and
// OpenAI's error type) lives here only.
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
  precondition_failed: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  quota_exceeded: 429,
  internal_error: 500,
  unavailable: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof errorStatus;

/** OpenAI's `type` of an error (its clients read it as `error.type`): the class of the error, where `code` names it. */
export const errorType = {
  invalid_request: "invalid_request_error",
  invalid_json: "invalid_request_error",
  invalid_file: "invalid_request_error",
  unauthorized: "authentication_error",
  forbidden: "permission_error",
  tenant_suspended: "permission_error",
  not_found: "invalid_request_error",
  method_not_allowed: "invalid_request_error",
  conflict: "invalid_request_error",
  lease_lost: "invalid_request_error",
  precondition_failed: "invalid_request_error",
  payload_too_large: "invalid_request_error",
  unsupported_media_type: "invalid_request_error",
  rate_limited: "rate_limit_error",
  quota_exceeded: "insufficient_quota",
  internal_error: "server_error",
  unavailable: "server_error",
} as const satisfies Record<ErrorCode, string>;

/** Longest Retry-After (seconds) a client should sleep through before retrying on its own. */
const MAX_CLIENT_WAIT = 60;

/**
 * `x-should-retry: false` for a 409, 429 or 503 that a retry in a moment cannot fix: one without Retry-After (a
 * job's status that does not allow the move, inference switched off) or with a longer wait than MAX_CLIENT_WAIT
 * (the month's tokens). OpenAI's clients retry those statuses by default and sleep whatever Retry-After says,
 * days included; they obey this header.
 */
function retryHint(status: number, headers: Record<string, string>): Record<string, string> {
  if (status !== 409 && status !== 429 && status !== 503) return {};
  const wait = Number(Object.entries(headers).find(([k]) => k.toLowerCase() === "retry-after")?.[1]);
  return Number.isFinite(wait) && wait <= MAX_CLIENT_WAIT ? {} : { "x-should-retry": "false" };
}

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
    for (const [k, v] of Object.entries({ ...err.headers, ...retryHint(err.status, err.headers) })) c.header(k, v);
    return c.json({ error: { code: err.code, message: err.message, param: err.param, type: errorType[err.code], request_id: requestId } }, err.status);
  }
  console.error(`[${requestId}]`, err);
  return c.json({ error: { code: "internal_error", message: "internal error; quote the request_id when reporting it", param: null, type: errorType.internal_error, request_id: requestId } }, 500);
}
