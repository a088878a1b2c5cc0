// `engine train --model DIR --data FILE --out DIR [...]`: trains a LoRA adapter, printing every training
// event as one JSON line on stdout and a final {"type":"result",…} line; Ctrl-C stops between steps.
import { projectionTargets } from "../engine/lora/targets.js";
import { runTraining, TrainingCancelled, type TrainJobSpec } from "../engine/train/loop.js";
import { existingFile, existingFolder, numberFlag, outputFolder, parseFlags, printedHelp, required, UsageError } from "./args.js";

const USAGE = `usage: tuneserve engine train --model DIR --data FILE --out DIR [--validation FILE] [--method lora]
  [--rank 8] [--alpha 16] [--dropout 0] [--targets all-linear|q_proj,v_proj,...] [--rslora]
  [--epochs 3] [--lr 2e-4] [--batch-size 8] [--grad-accum 1] [--seq-len 512] [--seed 0]
  [--schedule cosine|linear|constant] [--warmup-ratio 0.03] [--max-grad-norm 1|none] [--packing]
  [--checkpoint-every 0] [--checkpoint-dir DIR] [--resume DIR] [--threads 2] [--beta 0.1] [--init-adapter DIR]
A file of preference pairs ({"input","preferred_output","non_preferred_output"}) trains with DPO (--beta).
--init-adapter starts from a PEFT adapter (same rank, targets, alpha and rsLoRA) instead of a new one.`;

/** Parses the flags into a TrainJobSpec (defaults left to the loop, which owns them). */
export function specFromArgs(argv: string[]): TrainJobSpec {
  const { values } = parseFlags({
    args: argv,
    options: {
      model: { type: "string" }, data: { type: "string" }, out: { type: "string" }, validation: { type: "string" }, method: { type: "string" },
      rank: { type: "string" }, alpha: { type: "string" }, dropout: { type: "string" }, targets: { type: "string" }, rslora: { type: "boolean" },
      epochs: { type: "string" }, lr: { type: "string" }, "batch-size": { type: "string" }, "grad-accum": { type: "string" }, "seq-len": { type: "string" },
      seed: { type: "string" }, schedule: { type: "string" }, "warmup-ratio": { type: "string" }, "max-grad-norm": { type: "string" }, packing: { type: "boolean" },
      "checkpoint-every": { type: "string" }, "checkpoint-dir": { type: "string" }, resume: { type: "string" }, threads: { type: "string" },
      beta: { type: "string" }, "init-adapter": { type: "string" },
    },
  }, USAGE);
  if (values.method !== undefined && values.method !== "lora") throw new UsageError(`--method=${values.method} is not supported; use lora`);
  const schedule = values.schedule;
  if (schedule !== undefined && !["cosine", "linear", "constant"].includes(schedule)) throw new UsageError(`--schedule=${schedule} must be cosine, linear or constant`);
  const int = (flag: string, min: number) => {
    const v = values[flag as keyof typeof values] as string | undefined;
    return v === undefined ? undefined : numberFlag(v, `--${flag}`, 0, { integer: true, min });
  };
  // Bounds as trainSpecSchema's (engine/train/spec.ts), so that a value it would refuse is a mistake in the call (exit 2), named by its flag.
  const num = (flag: string, bounds: { min?: number; above?: number; max?: number; below?: number }) => {
    const v = values[flag as keyof typeof values] as string | undefined;
    return v === undefined ? undefined : numberFlag(v, `--${flag}`, 0, bounds);
  };
  const mgn = values["max-grad-norm"];
  const spec: TrainJobSpec = {
    modelDir: required(values.model, "--model", USAGE),
    dataPath: required(values.data, "--data", USAGE),
    outDir: required(values.out, "--out", USAGE),
    validationPath: values.validation,
    checkpointDir: values["checkpoint-dir"],
    resumeFrom: values.resume,
    initAdapter: values["init-adapter"],
    method: "lora",
    rank: int("rank", 1),
    alpha: num("alpha", { above: 0 }),
    dropout: num("dropout", { min: 0, below: 1 }),
    targets: targetsFlag(values.targets),
    useRslora: values.rslora,
    epochs: int("epochs", 1),
    lr: num("lr", { above: 0 }),
    batchSize: int("batch-size", 1),
    gradAccum: int("grad-accum", 1),
    seqLen: int("seq-len", 2),
    seed: int("seed", 0),
    schedule: schedule as TrainJobSpec["schedule"],
    warmupRatio: num("warmup-ratio", { min: 0, max: 1 }),
    maxGradNorm: mgn === undefined ? undefined : mgn === "none" ? null : numberFlag(mgn, "--max-grad-norm", 0, { above: 0 }),
    packing: values.packing,
    checkpointEvery: int("checkpoint-every", 0),
    threads: int("threads", 1),
    beta: num("beta", { above: 0, max: 100 }),
  };
  // Leave absent flags out so the loop's defaults apply.
  return Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined)) as TrainJobSpec;
}

/** --targets as the spec takes it, its names checked here so that a wrong one is a mistake in the call (exit 2). */
function targetsFlag(value: string | undefined): TrainJobSpec["targets"] {
  if (value === undefined || value === "all-linear") return value;
  const list = value.split(",").map((t) => t.trim()).filter(Boolean);
  if (list.length === 0) throw new UsageError(`--targets=${value} names no projection; use "all-linear" or a comma-separated list such as q_proj,v_proj`);
  try {
    projectionTargets(list, "--targets");
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return list;
}

/** Runs `engine train`: events as JSON lines on stdout, the result last. */
export async function run(argv: string[]): Promise<void> {
  if (printedHelp(argv, USAGE)) return;
  const spec = specFromArgs(argv);
  // Checked before training: a bad folder would otherwise fail only when the first checkpoint or the adapter is written, and a missing file with exit status 1.
  existingFolder(spec.modelDir, "--model", "config.json");
  existingFile(spec.dataPath, "--data", "JSONL file");
  if (spec.validationPath !== undefined) existingFile(spec.validationPath, "--validation", "JSONL file");
  outputFolder(spec.outDir, "--out");
  if (spec.checkpointDir !== undefined) outputFolder(spec.checkpointDir, "--checkpoint-dir");
  if (spec.resumeFrom !== undefined) existingFolder(spec.resumeFrom, "--resume", "trainer_state.json");
  if (spec.initAdapter !== undefined) existingFolder(spec.initAdapter, "--init-adapter", "adapter_config.json");
  let stop = false;
  const onSigint = () => {
    stop = true;
    console.error("engine train: stopping after the current step (Ctrl-C again to abort now)");
    process.off("SIGINT", onSigint);
  };
  process.on("SIGINT", onSigint);
  try {
    // Messages name the sequence length by its flag, and the files by their paths as given (the spec's default).
    const result = await runTraining({ ...spec, seqLenName: "--seq-len" }, { onEvent: (e) => console.log(JSON.stringify(e)), shouldStop: () => stop });
    console.log(JSON.stringify({ type: "result", ...result }));
  } catch (err) {
    if (!(err instanceof TrainingCancelled)) throw err;
    console.log(JSON.stringify({ type: "cancelled", step: err.step }));
    process.exitCode = 130;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
