// The Cloudflare Worker entry (wrangler.toml `main`): one app per isolate and origin, wired by worker-deps.ts.
import { createApp } from "./app.js";
import { billClosedDays } from "./usage/storage.js";
import { errorType } from "./errors.js";
import { createWorkerDeps } from "./worker-deps.js";

type App = ReturnType<typeof createApp>;

// env is the same object for every request of an isolate; a new deploy or secret gives a new one.
const apps = new WeakMap<object, Map<string, Promise<App>>>();
/** Presigned links name the serving origin; a Worker normally answers on one or two. */
const MAX_ORIGINS = 8;

function appFor(env: Record<string, unknown>, origin: string): Promise<App> {
  const byOrigin = apps.get(env) ?? new Map<string, Promise<App>>();
  apps.set(env, byOrigin);
  const key = typeof env.TUNESERVE_PUBLIC_URL === "string" ? "" : origin;
  let app = byOrigin.get(key);
  if (!app) {
    if (byOrigin.size >= MAX_ORIGINS) byOrigin.delete(byOrigin.keys().next().value!);
    app = createWorkerDeps(env, origin).then(createApp);
    // A failed start is not cached, so the next request retries (and reports) it.
    app.catch(() => byOrigin.delete(key));
    byOrigin.set(key, app);
  }
  return app;
}

export default {
  async fetch(req: Request, env: Record<string, unknown>, ctx: unknown): Promise<Response> {
    let app: App;
    try {
      app = await appFor(env, new URL(req.url).origin);
    } catch (e) {
      console.error("tuneserve worker failed to start:", e);
      const message = `the worker is misconfigured: ${(e as Error).message}`;
      return Response.json({ error: { code: "internal_error", message, param: null, type: errorType.internal_error, request_id: "unknown" } }, { status: 500 });
    }
    return app.fetch(req, env, ctx as never);
  },

  /** The cron of wrangler.toml ([triggers]): bills the adapter storage days that have ended. */
  async scheduled(_controller: unknown, env: Record<string, unknown>, ctx: { waitUntil(p: Promise<unknown>): void }): Promise<void> {
    // No request, so no origin: nothing this does signs a link.
    const deps = await createWorkerDeps(env, "https://scheduled.invalid");
    ctx.waitUntil(billClosedDays(deps.db, deps.now()).then((done) => console.log(JSON.stringify({ msg: "storage billed", ...done }))));
  },
};
