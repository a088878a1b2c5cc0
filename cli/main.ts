// `tuneserve <command>`: dispatches to the module that owns each command; no logic lives here.
import { UsageError } from "../gpu-runner/src/cli/args.js";
import { type Command, dispatch } from "../gpu-runner/src/cli/dispatch.js";

const commands: Record<string, Command> = {
  serve: { describe: "run the embedded default (API + runner, SQLite, local blobs)", load: () => import("./serve.js") },
  runner: { describe: "run a gpu-runner: register with the API, lease and train jobs, serve inference", load: () => import("../gpu-runner/src/main.js") },
  engine: { describe: "engine tools: logits | generate | grads | train", load: () => import("../gpu-runner/src/cli/engine.js") },
  bench: { describe: "benchmarks: generate | train | serve | json-mask", load: () => import("../bench/main.js") },
};

// Errors are one line without a stack: a mistake in the call exits 2, anything else 1.
dispatch("tuneserve", commands, process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
