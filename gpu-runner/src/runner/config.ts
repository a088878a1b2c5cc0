// Settings of a gpu-runner, parsed once with zod from the environment (TUNESERVE_RUNNER_*) with command-line
// flags taking precedence, so a container sets env and a developer overrides one thing on the command line.
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { existingFolder, parseFlags, UsageError } from "../cli/args.js";
import { executionProviders } from "../engine/runtime/providers.js";

/** One base model the runner trains and serves: a local Hugging Face folder, or (dir null) fetched from the blob store. */
export type ModelSpec = { id: string; dir: string | null };

const modelId = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Parses `id=/local/folder` or `id` (a blob-prefix model fetched into the cache, for leases and for serving). */
export function parseModelSpec(text: string): ModelSpec {
  const eq = text.indexOf("=");
  const id = (eq < 0 ? text : text.slice(0, eq)).trim();
  const dir = eq < 0 ? null : text.slice(eq + 1).trim();
  if (!modelId.test(id)) throw new Error(`model "${text}": id "${id}" must be 1–64 lowercase letters, digits, '.', '_' or '-'`);
  if (dir !== null && !dir) throw new Error(`model "${text}": the folder after '=' is empty; write id=/path/to/folder or just id`);
  return { id, dir: dir === null ? null : isAbsolute(dir) ? dir : resolve(dir) };
}

/**
 * Checks that each local model folder is there with its config.json, so that `tuneserve runner` names a wrong
 * path as a mistake in the call (exit 2) before it registers, rather than failing as it loads the model.
 */
export function checkModelFolders(models: ModelSpec[]): void {
  for (const m of models) {
    if (m.dir === null) continue;
    try {
      existingFolder(m.dir, `model ${m.id}:`, "config.json");
    } catch (err) {
      throw new UsageError(`--model / TUNESERVE_RUNNER_MODELS: ${(err as Error).message}`);
    }
  }
}

const intSetting = (min: number) => z.coerce.number().int().min(min);

export const runnerConfigSchema = z.object({
  apiUrl: z.string().url("must be a URL such as http://127.0.0.1:8787").transform((u) => u.replace(/\/+$/, "")),
  token: z.string().min(16, "the runner token must be at least 16 characters (the API's TUNESERVE_RUNNER_TOKEN)"),
  name: z.string().trim().min(1).max(128),
  models: z.array(z.custom<ModelSpec>()).min(1, "name at least one base model (id=/folder or id)"),
  /** Sequences each served base model decodes together (its batch; reported at registration). */
  capacity: intSetting(1).max(4096),
  /** Training jobs run at the same time; each gets its own worker thread. */
  trainingJobs: intSetting(1).max(64),
  /** host:port of the runner's own inference server; port 0 picks a free one. */
  listen: z.string().regex(/^[^:\s]+:\d{1,5}$/, "use host:port, e.g. 0.0.0.0:8080"),
  /** The URL the API should use to reach this runner; defaults to http://<listen>. */
  publicUrl: z.string().url().optional(),
  cacheDir: z.string().min(1),
  /** Steps between checkpoints uploaded to the blob store; 0 = only the final adapter. */
  checkpointEvery: intSetting(0),
  /**
   * On shutdown, how long the runner waits for a training job to finish its step and upload a checkpoint of it
   * before cancelling the training and handing the job back without it; 0 = cancel at once.
   */
  shutdownCheckpointSeconds: z.coerce.number().min(0).max(3600),
  /** Seconds between lease polls when nothing is queued (the wait doubles up to pollMaxSeconds). */
  pollSeconds: z.coerce.number().positive(),
  pollMaxSeconds: z.coerce.number().positive(),
  /** Longest prompt + max_tokens a served request may ask for (capped by each model's max_position_embeddings). */
  maxContext: intSetting(16).max(1 << 20),
  /** The largest LoRA rank served (the sessions' slot rank): at least the API's TUNESERVE_MAX_LORA_RANK. */
  loraRank: intSetting(1).max(1024),
  /** Serve inference for the base models, blob-prefix ones once downloaded ("off": a training-only runner). */
  inference: z.enum(["on", "off"], { error: 'use "on" or "off"' }),
  /** Seconds between asking the API whether a served blob-store model's files were replaced. */
  modelCheckSeconds: z.coerce.number().min(1).max(86_400),
});
export type RunnerConfig = z.infer<typeof runnerConfigSchema>;

/** Environment variable and flag of each setting (flags win). */
const sources = {
  apiUrl: ["TUNESERVE_API_URL", "api-url"],
  token: ["TUNESERVE_RUNNER_TOKEN", "token"],
  name: ["TUNESERVE_RUNNER_NAME", "name"],
  models: ["TUNESERVE_RUNNER_MODELS", "model"],
  capacity: ["TUNESERVE_RUNNER_CAPACITY", "capacity"],
  trainingJobs: ["TUNESERVE_RUNNER_TRAINING_JOBS", "training-jobs"],
  listen: ["TUNESERVE_RUNNER_LISTEN", "listen"],
  publicUrl: ["TUNESERVE_RUNNER_PUBLIC_URL", "public-url"],
  cacheDir: ["TUNESERVE_RUNNER_CACHE_DIR", "cache-dir"],
  checkpointEvery: ["TUNESERVE_RUNNER_CHECKPOINT_EVERY", "checkpoint-every"],
  shutdownCheckpointSeconds: ["TUNESERVE_RUNNER_SHUTDOWN_CHECKPOINT_SECONDS", "shutdown-checkpoint-seconds"],
  pollSeconds: ["TUNESERVE_RUNNER_POLL_SECONDS", "poll-seconds"],
  pollMaxSeconds: ["TUNESERVE_RUNNER_POLL_MAX_SECONDS", "poll-max-seconds"],
  maxContext: ["TUNESERVE_RUNNER_MAX_CONTEXT", "max-context"],
  loraRank: ["TUNESERVE_RUNNER_LORA_RANK", "lora-rank"],
  inference: ["TUNESERVE_RUNNER_INFERENCE", "inference"],
  modelCheckSeconds: ["TUNESERVE_RUNNER_MODEL_CHECK_SECONDS", "model-check-seconds"],
} as const satisfies Record<keyof RunnerConfig, readonly [string, string]>;


/** Defaults that depend on nothing but the machine. */
const defaults = (hostname: string) => ({
  name: `runner-${hostname}`,
  capacity: "16",
  trainingJobs: "1",
  listen: "127.0.0.1:0",
  cacheDir: join(homedir(), ".cache", "tuneserve-runner"),
  checkpointEvery: "50",
  // Within Kubernetes' default 30 s grace period, leaving time to hand the job back and exit.
  shutdownCheckpointSeconds: "20",
  pollSeconds: "1",
  pollMaxSeconds: "10",
  maxContext: "2048",
  loraRank: "16",
  inference: "on",
  modelCheckSeconds: "300",
});

/** Every environment variable the runner reads: its settings' and the engine's (execution providers, thread spinning). */
export const runnerEnvNames: readonly string[] = [...Object.values(sources).map(([env]) => env), "TUNESERVE_EXECUTION_PROVIDERS", "TUNESERVE_ORT_SPIN"];

const flagWidth = Math.max(...Object.values(sources).map(([, flag]) => flag.length)) + 1;
const envWidth = Math.max(...Object.values(sources).map(([env]) => env.length)) + 1;
/** `runner --help`'s table: each flag, its variable and its default. */
export const runnerFlagHelp = Object.entries(sources)
  .map(([key, [env, flag]]) => {
    const fallback = (defaults("<hostname>") as Record<string, string>)[key];
    const note = fallback !== undefined ? `default ${fallback}` : key === "publicUrl" ? "default http://<listen>" : "required";
    return `  --${flag.padEnd(flagWidth)} ${env.padEnd(envWidth)} ${note}`;
  })
  .join("\n");

export const RUNNER_USAGE = `usage: tuneserve runner [flags]

Every flag has an environment variable (the flag wins); --model repeats, TUNESERVE_RUNNER_MODELS is comma-separated:
${runnerFlagHelp}

The engine also reads TUNESERVE_EXECUTION_PROVIDERS (auto, cpu or cuda,cpu; default cpu) and TUNESERVE_ORT_SPIN (0 or 1).
See docs/runner.md.`;

/**
 * Builds the runner's settings from env and argv (`--model` may repeat; TUNESERVE_RUNNER_MODELS is
 * comma-separated). Errors name the setting and its variable/flag.
 */
export function loadRunnerConfig(argv: string[], env: Record<string, string | undefined> = process.env, hostname = "local"): RunnerConfig {
  const options = Object.fromEntries(
    Object.entries(sources).map(([key, [, flag]]) => [flag, key === "models" ? { type: "string" as const, multiple: true as const } : { type: "string" as const }]),
  );
  const { values } = parseFlags({ args: argv, options, allowPositionals: false, strict: true }, RUNNER_USAGE);
  const raw: Record<string, unknown> = { ...defaults(hostname) };
  for (const [key, [envName, flag]] of Object.entries(sources)) {
    const fromFlag = values[flag];
    const fromEnv = env[envName];
    if (key === "models") {
      const list = (fromFlag as string[] | undefined) ?? (fromEnv ? fromEnv.split(",") : []);
      try {
        raw.models = list.map((s) => s.trim()).filter(Boolean).map(parseModelSpec);
      } catch (err) {
        throw new UsageError(`--model / TUNESERVE_RUNNER_MODELS: ${(err as Error).message}`);
      }
    } else if (fromFlag !== undefined) raw[key] = fromFlag;
    else if (fromEnv !== undefined && fromEnv !== "") raw[key] = fromEnv;
  }
  const r = runnerConfigSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = String(issue.path[0]) as keyof typeof sources;
    const [envName, flag] = sources[key] ?? ["?", "?"];
    if (raw[key] === undefined) throw new UsageError(`runner setting ${key} (--${flag} / ${envName}) is required`);
    if (Array.isArray(raw[key]) && raw[key].length === 0) throw new UsageError(`runner setting ${key} (--${flag} / ${envName}) is required: ${issue.message}`);
    throw new UsageError(`runner setting ${key} (--${flag} / ${envName}) is "${String(raw[key])}": ${issue.message}`);
  }
  // The engine reads it where each session is made; a bad value is named here, before the runner registers.
  try {
    executionProviders(env.TUNESERVE_EXECUTION_PROVIDERS || "cpu");
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return { ...r.data, cacheDir: resolve(r.data.cacheDir) };
}
