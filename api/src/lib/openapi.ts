// Shared OpenAPI pieces: the error envelope schema and the standard error responses of a route.
import { z } from "@hono/zod-openapi";

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      param: z.string().nullable(),
      type: z.string().openapi({ description: "OpenAI's error type: invalid_request_error, authentication_error, permission_error, rate_limit_error, insufficient_quota or server_error" }),
      request_id: z.string(),
    }),
  })
  .openapi("Error");

type Headers = Record<string, { description: string; schema: { type: "integer" | "string"; enum?: string[] } }>;

const retryAfter: Headers = { "Retry-After": { description: "seconds to wait before trying again", schema: { type: "integer" } } };

const err = (description: string, headers?: Headers) => ({ content: { "application/json": { schema: errorSchema } }, description, ...(headers ? { headers } : {}) });

/** The error responses every authenticated route can give. */
export const errorResponses = {
  400: err("invalid input"),
  401: err("missing or invalid credentials"),
  404: err("not found, or owned by another tenant"),
} as const;

/** Those of a tenant API route (/v1/…), which the tenant's suspension and requests_per_minute also guard. */
export const tenantErrorResponses = {
  ...errorResponses,
  403: err("tenant_suspended: the operator suspended this tenant"),
  429: err("rate_limited: the tenant's requests_per_minute are used up; retry after Retry-After seconds", retryAfter),
} as const;

/** The answers of a route that takes an Idempotency-Key and spends quota. */
export const keyedErrorResponses = {
  409: err("a request with the same Idempotency-Key is still running, or took the key over from this one (stalled 60 s without refreshing it): repeat with the key to get its answer", retryAfter),
  429: err("quota_exceeded: a tenant quota is used up (Retry-After where waiting helps), or rate_limited: its requests_per_minute are", retryAfter),
} as const;

/** A success answer of such a route: it may be an earlier request's, replayed for the same key. */
export const replayed = <T extends { description: string }>(response: T) => ({
  ...response,
  headers: { "Idempotent-Replayed": { description: "present (true) when this is the answer to an earlier request with the same Idempotency-Key", schema: { type: "string", enum: ["true"] } } } satisfies Headers,
});

/** A 429 or 503 of the completion routes, and their 409: with the Retry-After to honour. */
export const errWithRetryAfter = (description: string) => err(description, retryAfter);

export const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

export const jsonBody = <T extends z.ZodTypeAny>(schema: T) => ({
  body: { content: { "application/json": { schema } }, required: true },
});

export const bearerSecurity = [{ bearer: [] }];
