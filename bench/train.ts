// `bench train`: LoRA training steps (forward + loss + backward + AdamW, r=8 on all seven projections,
// fp32) on a random preset model with our engine, then the PyTorch peer on the same preset; prints one
// JSON line shaped like the peer's {"train": {tokens_per_s, peak_rss_mb, gflops_per_s, …}} with ratios.
import { parseFlags, UsageError } from "../gpu-runner/src/cli/args.js";
import { createRng } from "../gpu-runner/src/engine/generate/rng.js";
import { type ModelConfig } from "../gpu-runner/src/engine/model/config.js";
import { loadModelConfig } from "../gpu-runner/src/engine/model/load-config.js";
import { frozenMatmulParams, loraParams, PROJECTIONS } from "../gpu-runner/src/engine/model/names.js";
import { openWeights } from "../gpu-runner/src/engine/model/weights.js";
import { nextTokenBatch } from "../gpu-runner/src/engine/train/feeds.js";
import { initParams } from "../gpu-runner/src/engine/train/lora-params.js";
import { LoraTrainer } from "../gpu-runner/src/engine/train/trainer.js";
import { benchEnv, peakRssMb, resetPeakRss, round, watchCpu } from "./env.js";
import { runPeer } from "./peer.js";
import { getPreset, PRESET_NAMES, type BenchPreset } from "./presets.js";
import { ensureBenchModel } from "./random-model.js";

const USAGE = `usage: tuneserve bench train [--preset ${PRESET_NAMES.join("|")}] [--warmup N] [--steps N] [--seed N] [--threads N] [--prepack auto|on|off] [--no-peer]`;
/** Timed steps per preset, as in the peer's README (warmup 3/2/2). */
const DEFAULT_STEPS: Record<string, [number, number]> = { micro: [3, 10], tiny: [3, 10], small: [2, 6], medium: [2, 4] };
const log = (msg: string) => console.error(msg);

/** --prepack auto|on|off: ORT weight pre-packing in the training session (LoraTrainer's prepack). */
function prepackFlag(v: string): boolean | "auto" {
  if (v === "auto") return "auto";
  if (v === "on" || v === "off") return v === "on";
  throw new UsageError(`bench train: --prepack=${v} must be auto, on or off`);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The peer's FLOP count per step: 4·N·T (frozen matmuls fwd + activation grads) + 12·L·B·S²·H (attention) + 6·N_lora·T. */
export function trainFlopsPerStep(cfg: ModelConfig, p: BenchPreset): { flops: number; parts: Record<string, number> } {
  const T = p.batch * p.seq;
  const N = frozenMatmulParams(cfg);
  const nLora = loraParams(cfg, p.loraRank);
  const dense = 4 * N * T;
  const attn = 12 * cfg.layers * p.batch * p.seq ** 2 * cfg.heads * cfg.headDim;
  const lora = 6 * nLora * T;
  return { flops: dense + attn + lora, parts: { N_frozen_matmul: N, N_lora: nLora, dense, attn, lora } };
}

async function runOurs(p: BenchPreset, baseDir: string, o: { warmup: number; steps: number; seed: number; threads: number; prepack: boolean | "auto" }) {
  const cfg = await loadModelConfig(baseDir);
  const trainer = new LoraTrainer(cfg, await openWeights(baseDir), { rank: p.loraRank, scale: p.loraAlpha / p.loraRank, targets: PROJECTIONS, threads: o.threads, maxGradNorm: null, prepack: o.prepack });
  trainer.setParams(initParams(trainer.params, "float32", createRng(o.seed).next)); // PEFT init: A uniform, B = 0
  const tokens = createRng(o.seed + 2);
  const times: number[] = [];
  const losses: number[] = [];
  resetPeakRss();
  try {
    const { cpu } = await watchCpu(async () => {
      for (let i = 0; i < o.warmup + o.steps; i++) {
        const rows = Array.from({ length: p.batch }, () => Array.from({ length: p.seq }, () => Math.floor(tokens.next() * p.vocab)));
        const batch = nextTokenBatch(rows);
        const t0 = performance.now();
        const { loss } = await trainer.step([batch], 1e-4);
        const dt = (performance.now() - t0) / 1000;
        losses.push(loss);
        if (i >= o.warmup) times.push(dt);
        log(`  ours train step ${i}${i < o.warmup ? " (warmup)" : ""}: ${dt.toFixed(3)}s loss ${loss.toFixed(4)}`);
      }
    });
    const med = median(times);
    const tok = p.batch * p.seq;
    const { flops, parts } = trainFlopsPerStep(cfg, p);
    return {
      tokens_per_step: tok,
      step_s_median: round(med, 4),
      step_s_min: round(Math.min(...times), 4),
      step_s_all: times.map((t) => round(t, 4)),
      tokens_per_s: round(tok / med, 1),
      loss_first: round(losses[0], 5),
      loss_last: round(losses[losses.length - 1], 5),
      flops_per_step: flops,
      flops_parts: parts,
      gflops_per_s: round(flops / med / 1e9, 2),
      peak_rss_mb: peakRssMb(),
      cpu,
    };
  } finally {
    await trainer.release();
  }
}

/** Entry point for `tuneserve bench train …` (argv after "train"). */
export async function runTrainBench(argv: string[]): Promise<void> {
  const { values } = parseFlags({
    args: argv,
    options: {
      preset: { type: "string", default: "tiny" }, warmup: { type: "string" }, steps: { type: "string" }, seed: { type: "string" },
      threads: { type: "string" }, "no-peer": { type: "boolean", default: false }, prepack: { type: "string", default: "auto" }, help: { type: "boolean", default: false },
    },
  }, USAGE);
  if (values.help) return void console.error(USAGE);
  const p = getPreset(values.preset);
  const int = (v: string | undefined, flag: string, fallback: number, min: number) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`bench train: --${flag}=${v} must be a whole number ≥ ${min}`);
    return n;
  };
  const [dw, ds] = DEFAULT_STEPS[p.name];
  const o = { warmup: int(values.warmup, "warmup", dw, 0), steps: int(values.steps, "steps", ds, 1), seed: int(values.seed, "seed", 0, 0), threads: int(values.threads, "threads", 2, 1), prepack: prepackFlag(values.prepack!) };
  const setup = await ensureBenchModel(p, o.seed);
  log(`bench train: preset ${p.name}, model ${setup.created ? "written to" : "cached at"} ${setup.baseDir}`);
  const ours = await runOurs(p, setup.baseDir, o);
  log(`  ours: ${ours.tokens_per_s} tok/s, ${ours.gflops_per_s} GFLOP/s, peak RSS ${ours.peak_rss_mb} MB`);

  let peer: Record<string, unknown> | null = null;
  let peerReason: string | undefined = "--no-peer";
  if (!values["no-peer"]) {
    log("bench train: running the PyTorch peer (same preset, steps and threads)");
    const args = ["--no-gen", "--no-matmul", "--seed", String(o.seed), "--threads", String(o.threads), "--warmup", String(o.warmup), "--steps", String(o.steps), "--rank", String(p.loraRank), "--alpha", String(p.loraAlpha)];
    const outcome = await runPeer(p.name, args, (line) => log(`  peer: ${line}`));
    if (outcome.ok) {
      peer = outcome.result;
      peerReason = undefined;
    } else peerReason = outcome.reason;
  }
  const pt = (peer?.train ?? null) as Record<string, number> | null;
  const ratio = (a: number, b: number | undefined) => (b ? round(a / b, 3) : null);
  const warnings: string[] = [];
  if ((ours.cpu.foreign_share ?? 0) > 0.1) warnings.push("ours: other processes used > 10% of the CPUs while training; rerun on a quiet machine");
  if (((pt?.cpu as unknown as { foreign_share?: number } | undefined)?.foreign_share ?? 0) > 0.1) warnings.push("peer: other processes used > 10% of the CPUs while training; rerun on a quiet machine");
  const blas = ((peer?.env as { blas_libs?: string[] } | undefined)?.blas_libs ?? []).join(" ");
  if (peer && !/openblas|mkl/i.test(blas)) warnings.push("peer: torch uses the reference BLAS (~20× slower); apt-get install -y libopenblas0-openmp");
  console.log(
    JSON.stringify({
      bench: "tuneserve_train",
      preset: p.name,
      config: { hidden: p.hidden, layers: p.layers, heads: p.heads, kv_heads: p.kvHeads, intermediate: p.intermediate, vocab: p.vocab, seq: p.seq, batch: p.batch, lora_rank: p.loraRank, lora_alpha: p.loraAlpha, lora_targets: p.loraTargets, dtype: "float32", seed: o.seed, warmup: o.warmup, steps: o.steps, prepack: o.prepack },
      env: benchEnv(o.threads),
      train: ours,
      // ~350 GFLOP/s is the measured fp32 MatMul ceiling of ORT on 2 threads here (TOOLCHAIN.md).
      fraction_of_350_gflops: round(ours.gflops_per_s / 350, 3),
      peer,
      ...(peerReason ? { peer_unavailable: peerReason } : {}),
      // On a shared machine the fastest step is the least disturbed one: its ratio is given beside the medians'.
      ratios: pt
        ? { tokens_per_s: ratio(ours.tokens_per_s, pt.tokens_per_s), tokens_per_s_fastest_step: ratio(pt.step_s_min, ours.step_s_min), peak_rss_mb: ratio(ours.peak_rss_mb, pt.peak_rss_mb) }
        : null,
      warnings,
    }),
  );
}
