// `tuneserve bench <generate|train|serve|json-mask>`: parses flags and hands off to one benchmark module each.
import { parseFlags, UsageError } from "../gpu-runner/src/cli/args.js";
import { getPreset, PRESET_NAMES } from "./presets.js";

const USAGE = `usage: tuneserve bench <generate|train|serve|json-mask> [--preset ${PRESET_NAMES.join("|")}] [--no-peer]
  generate options: --prompt-len N --gen-tokens N --gen-batches 1,8 --gen-repeats N --rounds N --seed N --threads N
    --no-decode-loop (one session.run per token instead of the greedy decode loop's runs of many)`;

/** Integer flag value ≥ min, or the fallback when the flag is absent. */
function intFlag(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`bench: --${name}=${value} must be a whole number ≥ ${min}`);
  return n;
}

/** Entry point for `tuneserve bench`. */
export async function run(args: string[]): Promise<void> {
  // -h is --help for every benchmark, as for the other commands.
  const argv = args.map((a) => (a === "-h" ? "--help" : a));
  // `bench train` has its own flags (--warmup, --steps), so it parses argv itself.
  if (argv[0] === "train") return (await import("./train.js")).runTrainBench(argv.slice(1));
  // `bench serve` too (--adapters, --requests, --concurrency, …).
  if (argv[0] === "serve") return (await import("./serve.js")).runServeBench(argv.slice(1));
  // `bench json-mask` (--vocab, --repeats): the JSON-mode mask, no model.
  if (argv[0] === "json-mask") return (await import("./json-mask.js")).runJsonMaskBench(argv.slice(1));
  const { positionals, values } = parseFlags({
    args: argv,
    allowPositionals: true,
    options: {
      preset: { type: "string", default: "tiny" },
      "no-peer": { type: "boolean", default: false },
      "no-decode-loop": { type: "boolean", default: false },
      "prompt-len": { type: "string" },
      "gen-tokens": { type: "string" },
      "gen-batches": { type: "string" },
      "gen-repeats": { type: "string" },
      rounds: { type: "string" },
      seed: { type: "string" },
      threads: { type: "string" },
      help: { type: "boolean", default: false },
    },
  }, USAGE);
  const [kind] = positionals;
  if (values.help || !kind) {
    console.error(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  if (kind === "train") throw new UsageError("bench: put 'train' first, e.g. bench train --preset small (its flags differ)");
  if (kind === "serve") throw new UsageError("bench: put 'serve' first, e.g. bench serve --adapters 1,8,32 (its flags differ)");
  if (kind !== "generate") {
    console.error(`bench: unknown benchmark "${kind}"\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const preset = getPreset(values.preset);
  const batches = values["gen-batches"]?.split(",").filter(Boolean).map((b) => intFlag("gen-batches", b, 1));
  if (batches && batches.some((b) => b < 1)) throw new UsageError("bench: --gen-batches must list batch sizes ≥ 1, e.g. 1,8");
  const { runGenerateBench } = await import("./generate.js");
  const result = await runGenerateBench({
    preset: {
      ...preset,
      promptLen: intFlag("prompt-len", values["prompt-len"], preset.promptLen, 1),
      genTokens: intFlag("gen-tokens", values["gen-tokens"], preset.genTokens, 1),
      genBatches: batches ?? preset.genBatches,
    },
    repeats: intFlag("gen-repeats", values["gen-repeats"], 3, 1),
    rounds: intFlag("rounds", values.rounds, 1, 1),
    seed: intFlag("seed", values.seed, 0),
    threads: intFlag("threads", values.threads, 2, 1),
    peer: !values["no-peer"],
    decodeLoop: !values["no-decode-loop"],
  });
  console.log(JSON.stringify(result));
}
