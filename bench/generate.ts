// `bench generate`: KV-cached greedy decoding of a random preset model with our engine, then the same
// with the PyTorch peer, printed as one JSON line shaped like the peer's with ours/peer ratios. With
// --rounds N the pair runs N times, ours then the peer's, so that each ratio compares runs minutes apart
// at most, whatever the host's load does over the whole benchmark; the ratios are then the per-round medians.
import { generate } from "../gpu-runner/src/engine/generate/generator.js";
import { createRng } from "../gpu-runner/src/engine/generate/rng.js";
import { LoadedModel } from "../gpu-runner/src/engine/runtime/loaded-model.js";
import { loadModelConfig } from "../gpu-runner/src/engine/model/load-config.js";
import { benchEnv, collectGarbage, peakRssMb, resetPeakRss, round, watchCpu } from "./env.js";
import { runPeer } from "./peer.js";
import type { BenchPreset } from "./presets.js";
import { ensureBenchModel } from "./random-model.js";
import { decodeBound } from "./decode-bound.js";
import { gemmGflops } from "./gemm-rate.js";

export type GenerateBenchOptions = {
  preset: BenchPreset;
  repeats: number;
  rounds?: number;
  seed: number;
  threads: number;
  peer: boolean;
  /** Greedy decoding through the model's decode loop (the engine's default for greedy rows); false: a run per token. */
  decodeLoop?: boolean;
};
export type GenerateMode = "lora_unmerged" | "base_only";

type Entry = Record<string, unknown> & { batch: number; mode: GenerateMode; prefill_tok_s: number; decode_tok_s: number };

const log = (msg: string) => console.error(msg);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Times greedy generation for one batch size: a 4-token warmup (as the peer's), a garbage collection so the
 * timed runs do not pay for the model load's garbage, then the median of `repeats` runs.
 */
async function timeBatch(model: LoadedModel, p: BenchPreset, batch: number, repeats: number, seed: number) {
  // Same prompt for every mode and repeat: random ids, like the peer's torch.randint prompt.
  const rng = createRng(seed + 3);
  const prompts = Array.from({ length: batch }, () => Array.from({ length: p.promptLen }, () => Math.floor(rng.next() * p.vocab)));
  const reqs = (maxTokens: number) => prompts.map((tokens) => ({ tokens, maxTokens, temperature: 0, adapterSlot: model.defaultSlot }));
  const feeds = { loraFeeds: model.loraFeeds(), decodeLoop: model.decodeLoop };
  await generate(model.session, reqs(4), feeds);
  await collectGarbage();
  const prefill: number[] = [];
  const decode: number[] = [];
  let firstTokens: number[] = [];
  for (let i = 0; i < Math.max(1, repeats); i++) {
    const { results, timings } = await generate(model.session, reqs(p.genTokens), feeds);
    prefill.push(timings.prefillMs / 1000);
    decode.push(timings.decodeMs / 1000);
    firstTokens = results[0].tokens.slice(0, 8);
  }
  const tp = median(prefill);
  const td = median(decode);
  const nDec = p.genTokens - 1;
  return {
    batch,
    prompt_len: p.promptLen,
    new_tokens: p.genTokens,
    prefill_s: round(tp, 4),
    prefill_tok_s: round((batch * p.promptLen) / tp, 1),
    decode_s: round(td, 4),
    decode_tok_s: nDec > 0 ? round((batch * nDec) / td, 2) : null,
    decode_ms_per_step: nDec > 0 ? round((1000 * td) / nDec, 3) : null,
    e2e_new_tok_s: round((batch * p.genTokens) / (tp + td), 2),
    first_tokens: firstTokens,
  };
}

/** Our side of the benchmark: both modes, every batch size, in the peer's order. */
async function runOurs(o: GenerateBenchOptions, baseDir: string, adapterDir: string): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const mode of ["lora_unmerged", "base_only"] as const) {
    const t0 = performance.now();
    const model = await LoadedModel.load(baseDir, { adapter: mode === "lora_unmerged" ? adapterDir : undefined, threads: o.threads, decodeLoop: o.decodeLoop ?? true });
    const buildS = round((performance.now() - t0) / 1000, 2);
    try {
      for (const batch of o.preset.genBatches) {
        resetPeakRss();
        const { value, cpu } = await watchCpu(() => timeBatch(model, o.preset, batch, o.repeats, o.seed));
        const entry: Entry = { ...value, mode, session_build_s: buildS, cpu, peak_rss_mb: peakRssMb() } as Entry;
        out.push(entry);
        log(`  ours ${mode} batch ${batch}: prefill ${entry.prefill_tok_s} tok/s, decode ${entry.decode_tok_s} tok/s`);
      }
    } finally {
      await model.release();
    }
  }
  return out;
}

/** ours/peer for prefill and decode throughput, keyed `<mode>_b<batch>`. */
export function ratios(ours: Entry[], peer: Record<string, unknown> | null): Record<string, Record<string, number | null>> | null {
  const peerGen = (peer?.generate as Entry[] | undefined) ?? null;
  if (!peerGen) return null;
  const out: Record<string, Record<string, number | null>> = {};
  for (const e of ours) {
    const q = peerGen.find((x) => x.batch === e.batch && x.mode === e.mode);
    const r = (a: number | null | undefined, b: number | null | undefined) => (a && b ? round(a / b, 3) : null);
    out[`${e.mode}_b${e.batch}`] = { decode_tok_s: r(e.decode_tok_s, q?.decode_tok_s), prefill_tok_s: r(e.prefill_tok_s, q?.prefill_tok_s) };
  }
  return out;
}

/** Reasons not to trust the numbers: other processes' CPU use during a phase, or a peer on the reference BLAS. */
export function warnings(ours: Entry[], peer: Record<string, unknown> | null): string[] {
  const out: string[] = [];
  const busy = (e: Record<string, unknown>) => ((e.cpu as { foreign_share?: number } | undefined)?.foreign_share ?? 0) > 0.1;
  const bad = ours.filter(busy).map((e) => `${e.mode}_b${e.batch}`);
  if (bad.length) out.push(`ours: other processes used > 10% of the CPUs during ${bad.join(", ")}; rerun on a quiet machine`);
  const peerGen = (peer?.generate as Entry[] | undefined) ?? [];
  const peerBad = peerGen.filter(busy).map((e) => `${e.mode}_b${e.batch}`);
  if (peerBad.length) out.push(`peer: other processes used > 10% of the CPUs during ${peerBad.join(", ")}; rerun on a quiet machine`);
  const blas = ((peer?.env as { blas_libs?: string[] } | undefined)?.blas_libs ?? []).join(" ");
  if (peer && !/openblas|mkl/i.test(blas)) {
    out.push("peer: torch uses the reference BLAS (~20× slower); apt-get install -y libopenblas0-openmp (see ../shared/peers/README.md)");
  }
  return out;
}

/** Runs the benchmark and returns the result object (the caller prints it). */
export async function runGenerateBench(o: GenerateBenchOptions): Promise<Record<string, unknown>> {
  const p = o.preset;
  const env = benchEnv(o.threads);
  const setup = await ensureBenchModel(p, o.seed);
  log(`bench generate: preset ${p.name}, model ${setup.created ? "written to" : "cached at"} ${setup.baseDir}`);
  const rounds: { ours: Entry[]; peer: Record<string, unknown> | null; oursGemm: number }[] = [];
  let bound: Awaited<ReturnType<typeof decodeBound>> | null = null;
  let peerReason: string | undefined = o.peer ? undefined : "--no-peer";
  const count = Math.max(1, o.rounds ?? 1);
  for (let r = 0; r < count; r++) {
    if (count > 1) log(`bench generate: round ${r + 1} of ${count}`);
    const ours = await runOurs(o, setup.baseDir, setup.adapterDir);
    // After our runs (its 256 MiB weight would count in their peak RSS), before the peer.
    bound ??= await decodeBound(await loadModelConfig(setup.baseDir), o.threads);
    if (r === 0) log(`  batch-1 decode bound: ${bound.weights_mb_per_token} MB of weights per token at ${bound.gemv_read_gb_s} GB/s → ≤ ${bound.b1_decode_ceiling_tok_s} tok/s`);
    const oursGemm = round(await gemmGflops(o.threads), 1);
    log(`  ours: 1024×1024 fp32 MatMul at ${oursGemm} GFLOP/s (the peer prints its own as matmul_1024_fp32_gflops)`);
    let peer: Record<string, unknown> | null = null;
    if (o.peer && peerReason === undefined) {
      const outcome = await runOnePeer(o);
      if (outcome.ok) peer = outcome.result;
      else peerReason = outcome.reason;
    }
    rounds.push({ ours, peer, oursGemm });
  }
  const ours = medianEntries(rounds.map((r) => r.ours));
  const peers = rounds.map((r) => r.peer).filter((x): x is Record<string, unknown> => x !== null);
  const peer = peers.length ? { ...peers[0], generate: medianEntries(peers.map((x) => x.generate as Entry[])) } : null;
  return {
    bench: "tuneserve_generate",
    preset: p.name,
    config: {
      hidden: p.hidden, layers: p.layers, heads: p.heads, kv_heads: p.kvHeads, intermediate: p.intermediate, vocab: p.vocab,
      lora_rank: p.loraRank, lora_alpha: p.loraAlpha, lora_targets: p.loraTargets, dtype: "float32", seed: o.seed,
      prompt_len: p.promptLen, gen_tokens: p.genTokens, gen_batches: p.genBatches, gen_repeats: o.repeats, rounds: count, decode_loop: o.decodeLoop ?? true,
    },
    env,
    generate: ours,
    decode_bound: bound,
    gemm_1024_gflops: gemmRates(rounds),
    peer,
    ...(peerReason ? { peer_unavailable: peerReason } : {}),
    ratios: count === 1 ? ratios(ours, peer) : medianRatios(rounds.map((r) => ratios(r.ours, r.peer))),
    ...(count > 1 ? { rounds: rounds.map((r) => ({ ours: r.ours.map(brief), peer: ((r.peer?.generate as Entry[] | undefined) ?? []).map(brief), ratios: ratios(r.ours, r.peer) })) } : {}),
    warnings: rounds.flatMap((r) => warnings(r.ours, r.peer)).filter((w, i, all) => all.indexOf(w) === i),
  };
}

/** Each round's 1024² fp32 MatMul GFLOP/s, ours and the peer's (null without a peer line). */
export function gemmRates(rounds: { oursGemm: number; peer: Record<string, unknown> | null }[]): { ours: number[]; peer: (number | null)[] } {
  return { ours: rounds.map((r) => r.oursGemm), peer: rounds.map((r) => (typeof r.peer?.matmul_1024_fp32_gflops === "number" ? r.peer.matmul_1024_fp32_gflops : null)) };
}

async function runOnePeer(o: GenerateBenchOptions) {
  const p = o.preset;
  log("bench generate: running the PyTorch peer (same preset, prompt length and token counts)");
  return runPeer(p.name, [
    "--no-train",
    "--seed", String(o.seed),
    "--threads", String(o.threads),
    "--prompt-len", String(p.promptLen),
    "--gen-tokens", String(p.genTokens),
    "--gen-batches", p.genBatches.join(","),
    "--gen-repeats", String(Math.max(1, o.repeats)),
    "--rank", String(p.loraRank),
    "--alpha", String(p.loraAlpha),
  ], (line) => log(`  peer: ${line}`));
}

/** One entry per (mode, batch): the first round's, with the median throughputs over the rounds and the highest peak RSS. */
export function medianEntries(rounds: Entry[][]): Entry[] {
  if (rounds.length === 1) return rounds[0];
  return rounds[0].map((e) => {
    const same = rounds.map((r) => r.find((x) => x.mode === e.mode && x.batch === e.batch)).filter((x): x is Entry => x !== undefined);
    const rss = same.map((x) => x.peak_rss_mb).filter((x): x is number => typeof x === "number");
    return {
      ...e,
      prefill_tok_s: median(same.map((x) => x.prefill_tok_s)),
      decode_tok_s: median(same.map((x) => x.decode_tok_s)),
      ...(rss.length ? { peak_rss_mb: Math.max(...rss) } : {}),
    };
  });
}

/** Per key and rate, the median of the rounds' ratios (each round's ours/peer from runs minutes apart). */
export function medianRatios(rounds: (ReturnType<typeof ratios>)[]): ReturnType<typeof ratios> {
  const given = rounds.filter((r): r is NonNullable<typeof r> => r !== null);
  if (given.length === 0) return null;
  const out: Record<string, Record<string, number | null>> = {};
  for (const key of Object.keys(given[0])) {
    out[key] = {};
    for (const rate of Object.keys(given[0][key])) {
      const xs = given.map((r) => r[key]?.[rate]).filter((x): x is number => typeof x === "number");
      out[key][rate] = xs.length ? round(median(xs), 3) : null;
    }
  }
  return out;
}

const brief = (e: Entry) => ({ mode: e.mode, batch: e.batch, prefill_tok_s: e.prefill_tok_s, decode_tok_s: e.decode_tok_s });
