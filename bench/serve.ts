// `tuneserve bench serve`: drives the serving path end to end (API → runner → continuous batching) with
// concurrent completions, each for a random one of N adapters, and reports generated tokens/s and
// p50/p99 latency — once with mixed-adapter batches and once with the one-adapter-per-batch baseline.
// Each configuration is run `--repeats` times, the configurations taking turns, and reported by its median.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseFlags, UsageError } from "../gpu-runner/src/cli/args.js";
import { createRng } from "../gpu-runner/src/engine/generate/rng.js";
import type { BatchingPolicy } from "../gpu-runner/src/serve/batch.js";
import { BUILTIN_MODEL_NAME, BUILTIN_SIZES, ensureBuiltinModel, type BuiltinSizes } from "../gpu-runner/src/models/builtin.js";
import { PRESET_NAMES, getPreset, headDim } from "./presets.js";
import { randomBuiltinAdapter, startServeStack, tenantWithAdapters } from "./stack.js";
import { ServeWorker } from "../gpu-runner/src/serve/worker-client.js";

/** Rank of the benchmark's adapters, and the slot rank the runner is started with. */
const ADAPTER_RANK = 8;

const USAGE = `usage: tuneserve bench serve [--adapters 1,8,32] [--requests N] [--concurrency N] [--max-tokens N]
  [--max-batch N] [--threads N] [--batching mixed|per-adapter|both] [--mode engine|e2e|both] [--repeats N] [--seed N]
  [--base builtin|${PRESET_NAMES.join("|")}] [--url API --admin-token T --model ID]
  Without --url it starts the API and one runner (built-in model) in this process (e2e), and the runner's
  serving worker alone (engine); with --url it loads a running system. The configurations take turns,
  run by run, and each reports its median over --repeats runs (default 3).
  --base serves an untrained model of the built-in family (byte-level vocabulary of 260) with the layer
  sizes of a \`bench generate\` preset instead of the built-in model.`;

type Mode = "e2e" | "engine";

export type RunStats = {
  /** e2e: through the API and HTTP; engine: the runner's serving worker alone. */
  mode: Mode;
  policy: BatchingPolicy;
  adapters: number;
  requests: number;
  tokens: number;
  wall_s: number;
  tokens_per_s: number;
  p50_ms: number;
  p99_ms: number;
  rejected: number;
  /** Tokens/s of every repeat (the reported run is their median). */
  tokens_per_s_runs?: number[];
  /** The runner's view (embedded runs only): decode steps, mean rows per step, share of time in session.run (all, and prefills). */
  engine?: { decode_steps: number; mean_batch: number; prefills: number; adapter_loads: number; busy_share: number; prefill_share: number };
};

const int = (name: string, v: string | undefined, def: number) => {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`bench serve: --${name}=${v} must be a whole number ≥ 1`);
  return n;
};

/** The q-quantile of sorted values (nearest rank). */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Sends one request; resolves to its completion tokens, or "busy" when it was turned away (429). */
type Send = (model: string, i: number) => Promise<number | "busy">;

/** An HTTP sender: POST /v1/completions through the API, as a product would. */
function apiSender(apiUrl: string, key: string, maxTokens: number): Send {
  return async (model, i) => {
    const body = { model, prompt: `Request ${i}: tell me about adapters.`, max_tokens: maxTokens, temperature: 0.7, seed: i };
    const res = await fetch(`${apiUrl}/v1/completions`, { method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (res.status === 429) {
      await res.body?.cancel();
      return "busy";
    }
    if (!res.ok) throw new Error(`bench serve: ${model}: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;
  };
}

/**
 * Sends `requests` requests from `concurrency` clients, each to a random model (to each in turn with
 * `cover`); a turned-away request waits 1 s and retries.
 */
async function drive(models: string[], send: Send, o: { requests: number; concurrency: number; seed: number; cover?: boolean }): Promise<Omit<RunStats, "policy" | "adapters" | "mode">> {
  const rng = createRng(o.seed);
  const latencies: number[] = [];
  let tokens = 0;
  let next = 0;
  let rejected = 0;
  const started = performance.now();
  const loop = async () => {
    while (next < o.requests) {
      const i = next++;
      const model = o.cover ? models[i % models.length] : models[Math.floor(rng.next() * models.length)];
      for (;;) {
        const t0 = performance.now();
        const got = await send(model, i);
        if (got === "busy") {
          rejected++;
          await new Promise((ok) => setTimeout(ok, 1000));
          continue;
        }
        latencies.push(performance.now() - t0);
        tokens += got;
        break;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, loop));
  const wall = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { requests: o.requests, tokens, wall_s: +wall.toFixed(3), tokens_per_s: +(tokens / wall).toFixed(1), p50_ms: +quantile(latencies, 0.5).toFixed(1), p99_ms: +quantile(latencies, 0.99).toFixed(1), rejected };
}

type EngineCounters = { steps: number; rowSteps: number; prefills: number; adapterLoads: number; runMs: number; prefillMs: number };
type RunOptions = { requests: number; concurrency: number; maxTokens: number; maxBatch: number; seed: number; repeats: number; threads?: number; base: Base };

/** The served model: its name and layer sizes. */
type Base = { name: string; sizes: BuiltinSizes };

/** `--base`: the built-in model, or its family at a generate-bench preset's layer sizes. */
export function benchBase(name: string): Base {
  if (name === "builtin") return { name: BUILTIN_MODEL_NAME, sizes: BUILTIN_SIZES };
  if (!(PRESET_NAMES as string[]).includes(name)) throw new UsageError(`bench serve: --base=${name}: use builtin or one of ${PRESET_NAMES.join(", ")}`);
  const p = getPreset(name);
  return { name: `tuneserve-bench-${p.name}`, sizes: { hidden: p.hidden, layers: p.layers, heads: p.heads, kvHeads: p.kvHeads, headDim: headDim(p), intermediate: p.intermediate } };
}

type Measured = Omit<RunStats, "mode" | "policy" | "adapters">;

/** A system under test, started and warmed up: `measure` sends the load once, `close` stops it. */
type Target = { measure(repeat: number): Promise<Measured>; close(): Promise<void> };

/** The median run by tokens/s (single runs vary by ±30 % on this shared machine), with every run's tokens/s. */
function medianRun(runs: Measured[]): Measured {
  const sorted = [...runs].sort((a, b) => a.tokens_per_s - b.tokens_per_s);
  return { ...sorted[Math.floor(sorted.length / 2)], tokens_per_s_runs: runs.map((x) => x.tokens_per_s) };
}

/** The scheduler's counters as a delta over one measured run. */
function engineDelta(before: EngineCounters, after: EngineCounters, wallS: number): NonNullable<RunStats["engine"]> {
  const steps = after.steps - before.steps;
  return {
    decode_steps: steps,
    mean_batch: +((after.rowSteps - before.rowSteps) / Math.max(1, steps)).toFixed(2),
    prefills: after.prefills - before.prefills,
    adapter_loads: after.adapterLoads - before.adapterLoads,
    busy_share: +((after.runMs - before.runMs) / 1000 / wallS).toFixed(2),
    prefill_share: +((after.prefillMs - before.prefillMs) / 1000 / wallS).toFixed(2),
  };
}

/** Opens a target in a fresh scratch folder (on a RAM disk when there is one, see openE2e), removed when it closes or fails to open. */
async function inScratch(open: (dir: string) => Promise<Target>): Promise<Target> {
  const dir = await mkdtemp(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "tuneserve-bench-serve-"));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const target = await open(dir);
    return { measure: target.measure, close: () => target.close().finally(remove) };
  } catch (err) {
    await remove();
    throw err;
  }
}

/**
 * End to end on a fresh in-process system: API (HTTP, auth, model lookup, metering) → runner → engine.
 * SQLite and the blobs sit on a RAM disk when there is one: every completion commits its usage events,
 * and each commit's fsync (~10 ms here, on the API's thread) would otherwise be what is measured.
 */
async function openE2e(dir: string, policy: BatchingPolicy, adapters: number, o: RunOptions): Promise<Target> {
  const stack = await startServeStack({ dataDir: dir, base: o.base, maxBatch: o.maxBatch, maxQueue: 4 * o.concurrency, batching: policy, loraRank: ADAPTER_RANK, threads: o.threads });
  const close = () => stack.close();
  const status = async (): Promise<EngineCounters> => {
    const res = await fetch(`${stack.inference.url}/v1/status`, { headers: { Authorization: `Bearer ${stack.runnerToken}` } });
    return ((await res.json()) as { models: Record<string, EngineCounters> }).models[stack.model];
  };
  try {
    const tenant = await tenantWithAdapters(stack, "bench", adapters, o.seed + 1);
    // Warm-up: every adapter fetched once (first-use downloads are not what this measures).
    await drive(tenant.models, apiSender(stack.apiUrl, tenant.key, 4), { requests: Math.max(adapters, o.concurrency), concurrency: o.concurrency, seed: o.seed + 2, cover: true });
    const measure = async (r: number): Promise<Measured> => {
      const before = await status();
      const run = await drive(tenant.models, apiSender(stack.apiUrl, tenant.key, o.maxTokens), { ...o, seed: o.seed + 100 * r });
      return { ...run, engine: engineDelta(before, await status(), run.wall_s) };
    };
    return { measure, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The serving engine alone: the runner's worker (scheduler + adapter tiers) driven without HTTP or the API. */
async function openEngine(dir: string, policy: BatchingPolicy, adapters: number, o: RunOptions): Promise<Target> {
  const modelDir = await ensureBuiltinModel(join(dir, "model"), o.base.sizes, o.base.name);
  const models: string[] = [];
  for (let i = 0; i < adapters; i++) {
    const a = randomBuiltinAdapter((o.seed + 1) * 1000 + i, ADAPTER_RANK, o.base.sizes);
    const d = join(dir, `adapter-${i}`);
    await mkdir(d);
    await writeFile(join(d, "adapter_config.json"), a.config);
    await writeFile(join(d, "adapter_model.safetensors"), a.weights);
    models.push(d);
  }
  const worker = await ServeWorker.start({ modelDir, maxBatch: o.maxBatch, maxContext: 512, slots: 2 * o.maxBatch + 1, rank: ADAPTER_RANK, policy, hostAdapters: 64, threads: o.threads });
  let id = 0;
  const send = (maxTokens: number): Send => async (model, i) => {
    const r = await worker.generate({ id: String(id++), input: { prompt: `Request ${i}: tell me about adapters.` }, adapter: { id: model, dir: model }, maxTokens, temperature: 0.7, topP: 1, topK: 0, seed: i, stop: [], stream: false });
    return r.completionTokens;
  };
  const close = () => worker.close();
  try {
    // Warm-up: every adapter loaded once (first-use loads are not what this measures).
    await drive(models, send(4), { requests: Math.max(adapters, o.concurrency), concurrency: o.concurrency, seed: o.seed + 2, cover: true });
    const measure = async (r: number): Promise<Measured> => {
      const before = await worker.stats();
      const run = await drive(models, send(o.maxTokens), { ...o, seed: o.seed + 100 * r });
      return { ...run, engine: engineDelta(before, await worker.stats(), run.wall_s) };
    };
    return { measure, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Each configuration's median over `repeats` runs, the configurations taking turns run by run (a fresh
 * system each time), so that this shared machine's slow and fast minutes fall on both sides of a ratio alike.
 */
async function runInTurns(mode: Mode, configs: { policy: BatchingPolicy; adapters: number }[], o: RunOptions): Promise<RunStats[]> {
  const runs: Measured[][] = configs.map(() => []);
  for (let r = 0; r < o.repeats; r++) {
    for (const [i, { policy, adapters }] of configs.entries()) {
      const target = await inScratch((dir) => (mode === "engine" ? openEngine : openE2e)(dir, policy, adapters, o));
      try {
        runs[i].push(await target.measure(r));
      } finally {
        await target.close();
      }
    }
  }
  return configs.map((c, i) => ({ mode, ...c, ...medianRun(runs[i]) }));
}

/** Entry point for `tuneserve bench serve`; prints one JSON line per run and a summary line. */
export async function runServeBench(argv: string[]): Promise<void> {
  const { values } = parseFlags({
    args: argv,
    options: {
      adapters: { type: "string", default: "1,8,32" },
      requests: { type: "string" },
      concurrency: { type: "string" },
      "max-tokens": { type: "string" },
      "max-batch": { type: "string" },
      threads: { type: "string" },
      batching: { type: "string", default: "both" },
      mode: { type: "string", default: "both" },
      seed: { type: "string" },
      repeats: { type: "string" },
      url: { type: "string" },
      "admin-token": { type: "string" },
      model: { type: "string", default: BUILTIN_MODEL_NAME },
      base: { type: "string", default: "builtin" },
      help: { type: "boolean", default: false },
    },
  }, USAGE);
  if (values.help) {
    console.error(USAGE);
    return;
  }
  const counts = values.adapters.split(",").filter(Boolean).map((a) => int("adapters", a, 1));
  const o: RunOptions = {
    requests: int("requests", values.requests, 256),
    concurrency: int("concurrency", values.concurrency, 32),
    maxTokens: int("max-tokens", values["max-tokens"], 64),
    maxBatch: int("max-batch", values["max-batch"], 16),
    threads: values.threads === undefined ? undefined : int("threads", values.threads, 1),
    seed: Number(values.seed ?? 0),
    repeats: int("repeats", values.repeats, 3),
    base: benchBase(values.base),
  };
  if (!["mixed", "per-adapter", "both"].includes(values.batching)) throw new UsageError(`bench serve: --batching=${values.batching}: use mixed, per-adapter or both`);
  if (!["e2e", "engine", "both"].includes(values.mode)) throw new UsageError(`bench serve: --mode=${values.mode}: use e2e, engine or both`);
  const policies: BatchingPolicy[] = values.batching === "both" ? ["mixed", "per-adapter"] : [values.batching as BatchingPolicy];
  const modes: Mode[] = values.url ? ["e2e"] : values.mode === "both" ? ["engine", "e2e"] : [values.mode as Mode];
  const runs: RunStats[] = [];
  const print = (r: RunStats) => {
    runs.push(r);
    console.log(JSON.stringify({ bench: "serve", ...r, base: o.base.name, concurrency: o.concurrency, max_tokens: o.maxTokens, max_batch: o.maxBatch, threads: o.threads ?? "default" }));
  };
  for (const mode of modes) {
    if (values.url) {
      // A running system: its batching policy is its own; only the load is ours.
      if (!values["admin-token"]) throw new UsageError("bench serve: --url needs --admin-token (to create the benchmark tenant)");
      for (const n of counts) {
        const tenant = await tenantWithAdapters({ apiUrl: values.url, adminToken: values["admin-token"], model: values.model, sizes: o.base.sizes }, `bench-${Date.now()}`, n, o.seed + 1);
        print({ mode, policy: "mixed", adapters: n, ...(await drive(tenant.models, apiSender(values.url, tenant.key, o.maxTokens), o)) });
      }
      continue;
    }
    // One adapter per batch is the same thing as mixing when there is only one adapter.
    const configs = counts.flatMap((adapters) => policies.filter((p) => !(p === "per-adapter" && adapters === 1 && policies.length > 1)).map((policy) => ({ policy, adapters })));
    for (const r of await runInTurns(mode, configs, o)) print(r);
  }
  const summary: Record<string, number> = {};
  const most = Math.max(...counts);
  for (const mode of modes) {
    const find = (p: BatchingPolicy, n: number) => runs.find((r) => r.mode === mode && r.policy === p && r.adapters === n);
    const one = find("mixed", 1);
    const mixed = find("mixed", most);
    const base = find("per-adapter", most);
    if (one && mixed && most > 1) summary[`${mode}_mixed_${most}_vs_1_adapter`] = +(mixed.tokens_per_s / one.tokens_per_s).toFixed(2);
    if (mixed && base) summary[`${mode}_mixed_vs_per_adapter_${most}`] = +(mixed.tokens_per_s / base.tokens_per_s).toFixed(2);
  }
  console.log(JSON.stringify({ bench: "serve", summary }));
}
