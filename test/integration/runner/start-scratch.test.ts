// A runner empties its jobs scratch folder on start, but only once the API has taken its name: a second process
// refused the name (a second `tuneserve serve` on one data folder) must not delete the live runner's attempts.
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer } from "../../../api/src/node.js";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { loadRunnerConfig } from "../../../gpu-runner/src/runner/config.js";
import { startRunner, type RunningRunner } from "../../../gpu-runner/src/runner/runner.js";

let dir: string;
let api: Awaited<ReturnType<typeof startServer>>;
let modelDir: string;
const quiet = () => {};

/** A runner named "twin" on the shared cache folder, serving the built-in model (so the API can ask whether it is live). */
const twin = () =>
  startRunner(
    loadRunnerConfig(["--api-url", api.url, "--token", api.runnerToken, "--name", "twin", "--model", `tuneserve-micro=${modelDir}`, "--cache-dir", join(dir, "runner"), "--poll-seconds", "5"], {}),
    { log: quiet },
  );

/** Puts a file into an attempt's scratch folder, as a training attempt in progress has one. */
async function scratchFile(attempt: string): Promise<string> {
  const folder = join(dir, "runner", "jobs", attempt);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, "train.jsonl"), "{}\n");
  return attempt;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-start-scratch-"));
  api = await startServer({ port: 0, dataDir: join(dir, "api") });
  modelDir = await ensureBuiltinModel(join(dir, "model"));
});

afterAll(async () => {
  await api?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("a runner's jobs scratch folder at start", () => {
  it("is left alone by a second process the API refuses the name to, and emptied by the next runner that takes it", async () => {
    const first: RunningRunner = await twin();
    try {
      const attempt = await scratchFile("ftjob-live-attempt-1");
      await expect(twin()).rejects.toThrow(/409 conflict runner name 'twin' is in use by a live runner/);
      expect(await readdir(join(dir, "runner", "jobs"))).toEqual([attempt]);
    } finally {
      await first.stop();
    }
    // Stopped, the first runner's attempt folder is a leftover: the next runner under the name removes it.
    await scratchFile("ftjob-left-attempt-1");
    const next = await twin();
    try {
      expect(await readdir(join(dir, "runner", "jobs")).catch(() => [])).toEqual([]);
    } finally {
      await next.stop();
    }
  });
});
