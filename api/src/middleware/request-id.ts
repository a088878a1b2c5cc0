// Gives every request an id (echoed as X-Request-Id) that error envelopes and logs quote.
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../deps.js";
import { newId } from "../lib/ids.js";

export function requestId(): MiddlewareHandler<AppEnv> {
  return async function requestId(c, next) {
    const id = newId("req_");
    c.set("requestId", id);
    c.header("X-Request-Id", id);
    await next();
  };
}
