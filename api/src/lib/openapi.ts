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

export const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

export const jsonBody = <T extends z.ZodTypeAny>(schema: T) => ({
  body: { content: { "application/json": { schema } }, required: true },
});

export const bearerSecurity = [{ bearer: [] }];
