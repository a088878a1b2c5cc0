// Lets work outlive the client: a Worker cancels a request's pending tasks when its client disconnects,
// unless they are registered with waitUntil. Node keeps them running anyway (Hono has no execution
// context there, and asking for it throws).
import type { Context } from "hono";
import type { AppEnv } from "../deps.js";

/** Registers `work` with the Worker's waitUntil, where there is one. */
export function keepRunning(c: Context<AppEnv>, work: Promise<unknown>): void {
  let ctx: { waitUntil(p: Promise<unknown>): void } | undefined;
  try {
    ctx = c.executionCtx;
  } catch {
    ctx = undefined;
  }
  ctx?.waitUntil(work);
}
