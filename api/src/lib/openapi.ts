// Shared OpenAPI pieces: the error envelope schema and the standard error responses of a route.
import { z } from "@hono/zod-openapi";

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      param: z.string().nullable(),
      request_id: z.string(),
    }),
  })
  .openapi("Error");

const err = (description: string) => ({ content: { "application/json": { schema: errorSchema } }, description });

/** The error responses every authenticated route can give. */
export const errorResponses = {
  400: err("invalid input"),
  401: err("missing or invalid credentials"),
  404: err("not found, or owned by another tenant"),
} as const;

/** The answers of a route that takes an Idempotency-Key and spends quota. */
export const keyedErrorResponses = {
  409: err("a request with the same Idempotency-Key is still running (Retry-After)"),
  429: err("quota_exceeded: a tenant quota is used up (Retry-After where waiting helps)"),
} as const;

export const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

export const jsonBody = <T extends z.ZodTypeAny>(schema: T) => ({
  body: { content: { "application/json": { schema } }, required: true },
});

export const bearerSecurity = [{ bearer: [] }];
