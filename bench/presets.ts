// Benchmark model sizes, copied exactly from the PyTorch peer (../shared/peers/torch_lora_bench.py,
// PRESETS and argparse defaults) so both sides measure the same model.
import { UsageError } from "../gpu-runner/src/cli/args.js";

export type PresetName = "micro" | "tiny" | "small" | "medium";

/** One benchmark configuration: model sizes, training shape, LoRA and generation settings. */
export type BenchPreset = {
  name: PresetName;
  hidden: number;
  layers: number;
  heads: number;
  /** GQA key/value heads; the peer defaults this to `heads` (micro sets 2). */
  kvHeads: number;
  intermediate: number;
  vocab: number;
  /** Training sequence length and batch. */
  seq: number;
  batch: number;
  loraRank: number;
  loraAlpha: number;
  loraTargets: string[];
  /** Generation: prompt tokens, new tokens, batch sizes (peer's --prompt-len, --gen-tokens, --gen-batches). */
  promptLen: number;
  genTokens: number;
  genBatches: number[];
  /** Peer's fixed model settings (argparse defaults). */
  rmsEps: number;
  ropeTheta: number;
  maxPositions: number;
};

export const LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

type Sizes = Pick<BenchPreset, "hidden" | "layers" | "heads" | "intermediate" | "vocab" | "seq" | "batch"> & { kvHeads?: number };

const SIZES: Record<PresetName, Sizes> = {
  micro: { hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 172, vocab: 256, seq: 32, batch: 2 },
  tiny: { hidden: 256, layers: 4, heads: 4, intermediate: 688, vocab: 4096, seq: 128, batch: 8 },
  small: { hidden: 512, layers: 8, heads: 8, intermediate: 1376, vocab: 8192, seq: 256, batch: 4 },
  medium: { hidden: 768, layers: 12, heads: 12, intermediate: 2048, vocab: 32000, seq: 256, batch: 4 },
};

export const PRESET_NAMES = Object.keys(SIZES) as PresetName[];

/** The full preset for a name, with the peer's defaults filled in; throws on an unknown name. */
export function getPreset(name: string): BenchPreset {
  const sizes = SIZES[name as PresetName];
  if (!sizes) throw new UsageError(`bench: unknown preset "${name}"; choose one of ${PRESET_NAMES.join(", ")}`);
  return {
    name: name as PresetName,
    ...sizes,
    kvHeads: sizes.kvHeads ?? sizes.heads,
    loraRank: 8,
    loraAlpha: 16,
    loraTargets: [...LORA_TARGETS],
    promptLen: 128,
    genTokens: 128,
    genBatches: [1, 8],
    rmsEps: 1e-5,
    ropeTheta: 10000,
    maxPositions: 2048,
  };
}

/** Width of one attention head (the peer: hidden // heads unless --head-dim). */
export function headDim(p: BenchPreset): number {
  return p.hidden / p.heads;
}
