// `tuneserve runner`: a gpu-runner process — settings from env and flags, then register, serve and lease
// until SIGINT/SIGTERM, which hands running jobs back to the queue with a checkpoint of the step each reached.
import { hostname } from "node:os";
import { printedHelp } from "./cli/args.js";
import { checkModelFolders, loadRunnerConfig, RUNNER_USAGE } from "./runner/config.js";
import { startRunner } from "./runner/runner.js";
import { explainStartFailure } from "./runner/start-failure.js";

/** Entry of `npx tuneserve runner [flags]`. */
export async function run(argv: string[]): Promise<void> {
  if (printedHelp(argv, RUNNER_USAGE)) return;
  const config = loadRunnerConfig(argv, process.env, hostname());
  checkModelFolders(config.models);
  // Superseded (another process registered the name): the runner has stopped itself; exit as failed.
  const runner = await startRunner(config, { onSuperseded: () => process.exit(1) }).catch((err: unknown) => {
    throw explainStartFailure(err, config);
  });
  console.log(JSON.stringify({ msg: "tuneserve runner started", runner_id: runner.id, name: runner.name, url: runner.url, api: config.apiUrl }));
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void runner.stop().then(
      () => process.exit(0),
      (err: Error) => (console.error(err.message), process.exit(1)),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
