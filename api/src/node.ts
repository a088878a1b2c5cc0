// The API on Node with a local SQLite file and blob store: started by `tuneserve serve` (cli/serve.ts), benches and tests.
import { serve } from "@hono/node-server";
import { createApp } from "./app.js";
import type { Deps } from "./deps.js";
import { createNodeDeps } from "./node-deps.js";
import { billClosedDays } from "./usage/storage.js";
import { extendLeasesAfterStart } from "./jobs/restart-grace.js";

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

type Fetch = (req: Request, env: unknown) => Response | Promise<Response>;

/**
 * Starts the API on the given port (0 = any free port) and resolves once it listens. The port is taken before the
 * data folder is touched: a start refused there (a port in use) leaves a new folder as it found it.
 */
export async function startServer(opts: {
  port: number;
  host?: string;
  dataDir: string;
  env?: Record<string, string | undefined>;
  /** Runs once the port is held, before anything is written to the data folder (serve makes and checks it here). */
  prepareData?: () => Promise<void>;
}): Promise<RunningServer & { adminToken: string; runnerToken: string }> {
  const host = opts.host ?? "127.0.0.1";
  // Where others reach this server (it may listen on 0.0.0.0, or behind a proxy): presigned /blobs/ links name it.
  const configuredUrl = (opts.env ?? process.env).TUNESERVE_PUBLIC_URL || undefined;
  if (configuredUrl !== undefined && !/^https?:\/\/[^/]/.test(configuredUrl)) {
    throw new Error(`TUNESERVE_PUBLIC_URL=${configuredUrl}: must be an absolute URL like https://api.example.com`);
  }
  // Requests that come before the app is ready (a runner of the last run calling back) wait for it.
  let ready!: (app: Fetch | null) => void;
  const app = new Promise<Fetch | null>((ok) => (ready = ok));
  const server = await listen(host, opts.port, async (req, env) => {
    const fetch = await app;
    return fetch ? fetch(req, env) : Response.json({ error: { code: "unavailable", message: "the server failed to start" } }, { status: 503 });
  });
  const addr = server.address();
  const publicUrl = `http://${host}:${addr && typeof addr === "object" ? addr.port : opts.port}`;
  let opened: Awaited<ReturnType<typeof createNodeDeps>> | undefined;
  try {
    await opts.prepareData?.();
    opened = await createNodeDeps({ dataDir: opts.dataDir, publicUrl: configuredUrl ?? publicUrl, env: opts.env });
    await extendLeasesAfterStart(opened.deps.db, opened.deps.now(), opened.deps.config.TUNESERVE_LEASE_SECONDS);
  } catch (err) {
    ready(null);
    server.close(opened?.close);
    throw err;
  }
  const { deps, close } = opened;
  ready(createApp(deps).fetch);
  const billing = billStorageHourly(deps);
  return {
    url: publicUrl,
    adminToken: deps.config.TUNESERVE_ADMIN_TOKEN!,
    runnerToken: deps.config.TUNESERVE_RUNNER_TOKEN!,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => {
          void billing.stop().then(() => {
            close();
            ok();
          });
        });
      }),
  };
}

/** Listens on host:port, or fails naming the flag to change. */
function listen(host: string, port: number, fetch: Fetch): Promise<ReturnType<typeof serve>> {
  return new Promise((ok, fail) => {
    const failToListen = (err: NodeJS.ErrnoException) => {
      fail(
        err.code === "EADDRINUSE"
          ? new Error(`${host}:${port} is already in use; stop what listens there or pick another port (--port N, or PORT)`)
          : new Error(`cannot listen on ${host}:${port} (--host, --port): ${err.message}`),
      );
    };
    const s = serve({ fetch, port, hostname: host }, () => {
      s.off("error", failToListen);
      ok(s);
    });
    s.once("error", failToListen);
  });
}

/** Bills the adapter storage days that have ended, now and every hour (the Worker does it from a cron). */
function billStorageHourly(deps: Deps): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const bill = () => {
    running = billClosedDays(deps.db, deps.now()).catch((err: unknown) => console.error("billing adapter storage failed:", err));
  };
  bill();
  const timer = setInterval(bill, 3600_000).unref();
  // The database closes after stop(): let a run in progress finish first.
  return { stop: () => (clearInterval(timer), running.then(() => undefined)) };
}
