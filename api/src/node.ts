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

/** Starts the API on the given port (0 = any free port) and resolves once it listens. */
export async function startServer(opts: { port: number; host?: string; dataDir: string; env?: Record<string, string | undefined> }): Promise<RunningServer & { adminToken: string; runnerToken: string }> {
  const host = opts.host ?? "127.0.0.1";
  let publicUrl = `http://${host}:${opts.port}`;
  // Where others reach this server (it may listen on 0.0.0.0, or behind a proxy): presigned /blobs/ links name it.
  const configuredUrl = (opts.env ?? process.env).TUNESERVE_PUBLIC_URL || undefined;
  if (configuredUrl !== undefined && !/^https?:\/\/[^/]/.test(configuredUrl)) {
    throw new Error(`TUNESERVE_PUBLIC_URL=${configuredUrl}: must be an absolute URL like https://api.example.com`);
  }
  const { deps, close } = await createNodeDeps({ dataDir: opts.dataDir, publicUrl: "http://placeholder", env: opts.env });
  await extendLeasesAfterStart(deps.db, deps.now(), deps.config.TUNESERVE_LEASE_SECONDS);
  const app = createApp(deps);
  const server = await new Promise<ReturnType<typeof serve>>((ok, fail) => {
    const failToListen = (err: NodeJS.ErrnoException) => {
      close();
      fail(
        err.code === "EADDRINUSE"
          ? new Error(`${host}:${opts.port} is already in use; stop what listens there or pick another port (--port N, or PORT)`)
          : new Error(`cannot listen on ${host}:${opts.port} (--host, --port): ${err.message}`),
      );
    };
    const s = serve({ fetch: app.fetch, port: opts.port, hostname: host }, () => {
      s.off("error", failToListen);
      ok(s);
    });
    s.once("error", failToListen);
  });
  const addr = server.address();
  if (addr && typeof addr === "object") publicUrl = `http://${host}:${addr.port}`;
  const billing = billStorageHourly(deps);
  // Presigned local-blob links point back at this server: at TUNESERVE_PUBLIC_URL when set, else where it listens.
  (deps.blobs as { setPublicUrl?: (u: string) => void }).setPublicUrl?.(configuredUrl ?? publicUrl);
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
