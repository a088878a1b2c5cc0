// End-to-end harness: starts `tuneserve serve` / `tuneserve runner` as real child processes (so SIGKILL is a
// real crash), reads their JSON log lines, and talks to the API over HTTP only.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const bin = fileURLToPath(new URL("../../../bin/tuneserve.mjs", import.meta.url));

export type Proc = {
  child: ChildProcess;
  /** Every JSON line printed so far (stdout and stderr). */
  lines: Array<Record<string, unknown>>;
  /** Resolves with the first line (already seen or coming) that matches. */
  waitLine(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM (or the given signal), then wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
};

/** Spawns `node bin/tuneserve.mjs <args>` with extra env; lines that are not JSON are kept as {text}. */
export function spawnCli(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [bin, ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ pred: (l: Record<string, unknown>) => boolean; ok: (l: Record<string, unknown>) => void }> = [];
  const exited = new Promise<number | null>((ok) => child.once("exit", (code) => ok(code)));
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on("line", (text) => {
      let l: Record<string, unknown>;
      try {
        l = JSON.parse(text);
      } catch {
        l = { text };
      }
      if (process.env.TUNESERVE_E2E_VERBOSE) console.log(`[${args[0]}] ${text}`);
      lines.push(l);
      for (const w of [...waiters]) if (w.pred(l)) (waiters.splice(waiters.indexOf(w), 1), w.ok(l));
    });
  }
  return {
    child,
    lines,
    waitLine(pred, timeoutMs = 60_000) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((ok, fail) => {
        const t = setTimeout(() => fail(new Error(`no matching log line from '${args.join(" ")}' within ${timeoutMs} ms; last lines:\n${lines.slice(-15).map((x) => JSON.stringify(x)).join("\n")}`)), timeoutMs);
        waiters.push({ pred, ok: (l) => (clearTimeout(t), ok(l)) });
        void exited.then((code) => fail(new Error(`'${args.join(" ")}' exited (${code}) before the expected line; last lines:\n${lines.slice(-15).map((x) => JSON.stringify(x)).join("\n")}`)));
      });
    },
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A tiny HTTP client for the public and admin API. */
export function apiClient(baseUrl: string) {
  async function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: any }> {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${token}` } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] = "application/json";
    }
    const res = await fetch(baseUrl + path, init);
    const text = await res.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = { text };
    }
    return { status: res.status, json };
  }
  return {
    call,
    async tenant(admin: string, name: string): Promise<{ id: string; key: string }> {
      const r = await call("POST", "/admin/v1/tenants", admin, { name });
      if (r.status !== 201) throw new Error(`tenant: ${r.status} ${JSON.stringify(r.json)}`);
      return { id: r.json.id, key: r.json.api_key };
    },
    async upload(key: string, content: string): Promise<string> {
      const form = new FormData();
      form.append("purpose", "fine-tune");
      form.append("file", new Blob([content], { type: "application/jsonl" }), "train.jsonl");
      const r = await call("POST", "/v1/files", key, form);
      if (r.status !== 201) throw new Error(`upload: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json.id;
    },
    async createJob(key: string, body: Record<string, unknown>): Promise<any> {
      const r = await call("POST", "/v1/fine_tuning/jobs", key, body);
      if (r.status !== 200) throw new Error(`job create: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json;
    },
    async job(key: string, id: string): Promise<any> {
      return (await call("GET", `/v1/fine_tuning/jobs/${id}`, key)).json;
    },
    /** The job once it has ended (succeeded, failed or cancelled). */
    finished(key: string, id: string, timeoutMs = 90_000): Promise<any> {
      return waitFor(`job ${id} to finish`, async () => {
        const j = (await call("GET", `/v1/fine_tuning/jobs/${id}`, key)).json;
        return ["succeeded", "failed", "cancelled"].includes(j.status) ? j : undefined;
      }, timeoutMs);
    },
    /** All of a job's events, oldest first (the API pages newest first). */
    async events(key: string, id: string): Promise<Array<{ id: string; message: string; type: string; level: string; data: any }>> {
      const all: Array<{ id: string; message: string; type: string; level: string; data: any }> = [];
      let after = "";
      for (;;) {
        const r = await call("GET", `/v1/fine_tuning/jobs/${id}/events?limit=100${after ? `&after=${after}` : ""}`, key);
        if (r.status !== 200) throw new Error(`events: ${r.status} ${JSON.stringify(r.json)}`);
        all.push(...r.json.data);
        if (!r.json.has_more || r.json.data.length === 0) return all.reverse();
        after = r.json.data[r.json.data.length - 1].id;
      }
    },
    /** Training tokens billed to the tenant (all buckets of kind training_tokens). */
    async trainingUsage(key: string): Promise<number> {
      const r = await call("GET", "/v1/usage?group_by=kind", key);
      if (r.status !== 200) throw new Error(`usage: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json.data.filter((b: { kind: string }) => b.kind === "training_tokens").reduce((n: number, b: { quantity: number }) => n + b.quantity, 0);
    },
  };
}

/** Polls `fn` until it returns a value other than undefined. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((ok) => setTimeout(ok, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

/** The synthetic task: a few fixed questions with fixed answers the adapter has to learn. */
export const facts = [
  ["What is the code word?", "marble"],
  ["Who guards the gate?", "the owl"],
  ["Which color is the door?", "teal"],
] as const;

/** Chat JSONL with each fact `repeat` times. */
export const factsJsonl = (repeat: number) =>
  Array.from({ length: repeat }, () => facts.map(([q, a]) => JSON.stringify({ messages: [{ role: "user", content: q }, { role: "assistant", content: a }] })))
    .flat()
    .join("\n") + "\n";
