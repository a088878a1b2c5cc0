// Training checkpoints: a folder holding a loadable PEFT adapter (the LoRA tensors), the AdamW moments
// (optimizer.safetensors) and trainer_state.json (format name + version, step, data order and
// position, RNG state, a fingerprint of the run) — everything a resumed run needs to continue exactly.
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { readSafetensors, writeSafetensors, type TensorToWrite } from "../weights/safetensors.js";
import { writePeftAdapter, type AdapterMeta } from "./export.js";
import type { FloatArray } from "../graph/types.js";
import type { TrainParam } from "./train-graph.js";

export const CHECKPOINT_FORMAT = "tuneserve.lora-checkpoint";
/**
 * The version this build writes. 2: the fingerprint holds the tokenizer's identity; 3: the base weights' identity
 * too (a build reading only 2 would refuse it as written by "a run with different base_weights"). Builds refuse
 * versions they do not read by the version (loadCheckpoint below, as it was). The runner protocol carries it as the
 * checkpoint's format, so that the API leases a job only to a runner that reads its checkpoint (docs/runner-protocol.md).
 */
export const CHECKPOINT_VERSION = 3;
/** The versions this build resumes: 1 (no tokenizer identity), 2 (no base weights' identity; both resumed as before) and 3. */
export const RESUMABLE_CHECKPOINT_VERSIONS: readonly number[] = [1, 2, CHECKPOINT_VERSION];

const u32 = z.number().int().min(0).max(0xffffffff);
export const trainerStateSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  version: z.number().int().refine((v) => RESUMABLE_CHECKPOINT_VERSIONS.includes(v), "not a version this build reads"),
  /** Optimizer steps completed. */
  step: z.number().int().min(0),
  /** The epoch whose row order `order` is (−1: none drawn yet). */
  orderEpoch: z.number().int().min(-1),
  order: z.array(z.number().int().min(0)),
  /** The data-shuffle RNG after drawing `order`. */
  rng: z.tuple([u32, u32, u32, u32]),
  /** Identifies the run's settings and data; a resume must match it. */
  fingerprint: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  /** The loss of every step so far (1-based step i at index i−1). */
  losses: z.array(z.number()),
  metrics: z.record(z.string(), z.number()),
});
export type TrainerState = z.infer<typeof trainerStateSchema>;

export type CheckpointData = {
  state: TrainerState;
  values: ReadonlyMap<string, FloatArray>;
  m: ReadonlyMap<string, FloatArray>;
  v: ReadonlyMap<string, FloatArray>;
};

const STATE_FILE = "trainer_state.json";
const OPTIMIZER_FILE = "optimizer.safetensors";

/**
 * Writes a checkpoint folder, via a temporary sibling renamed into place so a crash never leaves a
 * half-written checkpoint under the final name. Returns the file names.
 */
export async function saveCheckpoint(dir: string, params: readonly TrainParam[], data: CheckpointData, meta: AdapterMeta): Promise<string[]> {
  const tmp = `${dir}.partial`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(dirname(dir), { recursive: true });
  const files = await writePeftAdapter(tmp, params, data.values, meta);
  const opt: Record<string, TensorToWrite> = {};
  for (const p of params) {
    for (const [prefix, src] of [["m", data.m], ["v", data.v]] as const) {
      const x = src.get(p.name);
      if (!x) throw new Error(`checkpoint: no optimizer moment ${prefix} for ${p.name}`);
      opt[`${prefix}.${p.name}`] = { shape: [...p.shape], data: x instanceof Float32Array ? x : Float32Array.from(x) };
    }
  }
  await writeSafetensors(join(tmp, OPTIMIZER_FILE), opt, { format: CHECKPOINT_FORMAT });
  await writeFile(join(tmp, STATE_FILE), JSON.stringify(trainerStateSchema.parse(data.state)) + "\n");
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return [...files, OPTIMIZER_FILE, STATE_FILE];
}

/** Reads a checkpoint folder written by saveCheckpoint for a run with these trainable tensors. */
export async function loadCheckpoint(dir: string, params: readonly TrainParam[]): Promise<CheckpointData> {
  const statePath = join(dir, STATE_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(statePath, "utf8"));
  } catch (err) {
    throw new Error(`${statePath}: cannot be read as JSON (${(err as Error).message}); give a checkpoint folder written by tuneserve`);
  }
  const fmt = (raw as { format?: unknown; version?: unknown } | null) ?? {};
  if (fmt.format !== CHECKPOINT_FORMAT) throw new Error(`${statePath}: format=${JSON.stringify(fmt.format)} is not ${CHECKPOINT_FORMAT}`);
  if (!RESUMABLE_CHECKPOINT_VERSIONS.includes(fmt.version as number)) {
    throw new Error(`${statePath}: version=${JSON.stringify(fmt.version)} is not supported; this build reads versions ${RESUMABLE_CHECKPOINT_VERSIONS.join(", ")}`);
  }
  const r = trainerStateSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${statePath}: field ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const adapter = await readSafetensors(join(dir, "adapter_model.safetensors"));
  const opt = await readSafetensors(join(dir, OPTIMIZER_FILE));
  const take = (file: typeof adapter, name: string, p: TrainParam): Float32Array => {
    if (!file.has(name)) throw new Error(`${file.path}: missing tensor ${name}; the checkpoint does not match this run's LoRA settings`);
    const shape = file.shape(name);
    if (shape.join() !== p.shape.join()) throw new Error(`${file.path}: ${name} has shape [${shape}], this run needs [${p.shape}]`);
    return file.tensor(name);
  };
  const values = new Map<string, FloatArray>();
  const m = new Map<string, FloatArray>();
  const v = new Map<string, FloatArray>();
  for (const p of params) {
    values.set(p.name, take(adapter, p.name, p));
    m.set(p.name, take(opt, `m.${p.name}`, p));
    v.set(p.name, take(opt, `v.${p.name}`, p));
  }
  return { state: r.data, values, m, v };
}
