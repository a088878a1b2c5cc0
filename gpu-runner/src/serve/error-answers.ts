// The error answers of the runner's internal HTTP protocol: {error: {code, message, param}} with its status.
import type { Context } from "hono";
import { GenerationError } from "./worker-client.js";

export const errorJson = (c: Context, status: 400 | 401 | 404 | 429 | 500 | 502 | 503, code: string, message: string, param: string | null = null) =>
  c.json({ error: { code, message, param } }, status);

/** A generation's failure: a 400 naming the field when the request was at fault, else 500 generation_failed. */
export function failure(c: Context, err: unknown): Response {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof GenerationError && err.invalid) {
    const param = msg.match(/^([a-z_][\w.$]*):/)?.[1] ?? null;
    return errorJson(c, 400, "invalid_request", msg, param);
  }
  return errorJson(c, 500, "generation_failed", msg);
}
