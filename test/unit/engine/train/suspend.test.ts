// Suspending a run (what a runner asks of its trainer when it shuts down): the run ends at a step boundary
// with a checkpoint of the step it reached, the very files a periodic checkpoint there holds, unless its last
// checkpoint is already at that step; a run resumed from it repeats the uninterrupted run. A cancel wins.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runTraining, startTrainingWorker, TrainingCancelled, TrainingSuspended, type TrainEvent, type TrainHooks, type TrainJobSpec } from "../../../../gpu-runner/src/engine/train/loop.js";
import { colourRunSpec } from "./colour-run.js";

let root: string;
let spec: Omit<TrainJobSpec, "outDir">;
/** The uninterrupted run: a checkpoint every 3 steps, its per-step losses. */
let fullLosses: Array<readonly [number, number]>;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tuneserve-suspend-"));
  spec = await colourRunSpec(root);
  fullLosses = lossesOf((await run({ ...spec, outDir: join(root, "full") })).events);
});
afterAll(() => rm(root, { recursive: true, force: true }));

const lossesOf = (events: TrainEvent[]) => events.flatMap((e) => (e.type === "progress" ? [[e.step, e.loss] as const] : []));
const checkpointSteps = (events: TrainEvent[]) => events.flatMap((e) => (e.type === "checkpoint" ? [e.step] : []));
const exists = (p: string) => stat(p).then(() => true, () => false);

/** Runs in this thread; `hooks` get the number of steps done so far. Returns the events and how the run ended. */
async function run(s: TrainJobSpec, hooks: { shouldStop?: (steps: number) => boolean; shouldSuspend?: (steps: number) => boolean } = {}) {
  const events: TrainEvent[] = [];
  let steps = 0;
  const h: TrainHooks = {
    onEvent: (e) => void (events.push(e), e.type === "progress" && steps++),
    shouldStop: hooks.shouldStop && (() => hooks.shouldStop!(steps)),
    shouldSuspend: hooks.shouldSuspend && (() => hooks.shouldSuspend!(steps)),
  };
  const ended = await runTraining(s, h).then((r) => r, (err: unknown) => err);
  return { events, ended };
}

it("checkpoints the step it reached, file for file the periodic checkpoint at that step, and a resume from it repeats the full run", async () => {
  const out = join(root, "suspended");
  const { events, ended } = await run({ ...spec, checkpointEvery: 0, outDir: out }, { shouldSuspend: (steps) => steps >= 3 });
  expect(ended).toBeInstanceOf(TrainingSuspended);
  expect(ended).toMatchObject({ step: 3, checkpointed: true });
  expect(lossesOf(events)).toEqual(fullLosses.slice(0, 3));
  expect(events.at(-1)).toMatchObject({ type: "checkpoint", step: 3, dir: join(out, "checkpoints", "3") });
  expect(await exists(join(out, "adapter_model.safetensors"))).toBe(false);

  const mine = join(out, "checkpoints", "3");
  const periodic = join(root, "full", "checkpoints", "3");
  expect((await readdir(mine)).sort()).toEqual((await readdir(periodic)).sort());
  for (const f of await readdir(periodic)) expect((await readFile(join(mine, f))).equals(await readFile(join(periodic, f))), f).toBe(true);

  const resumed = await run({ ...spec, outDir: join(root, "after-suspend"), resumeFrom: mine });
  expect(lossesOf(resumed.events)).toEqual(fullLosses.slice(3));
});

it("writes no second checkpoint at a step that has one: a periodic one just written, or the one it resumed from", async () => {
  const atPeriodic = await run({ ...spec, outDir: join(root, "at-periodic") }, { shouldSuspend: (steps) => steps >= 3 });
  expect(ended(atPeriodic)).toMatchObject({ step: 3, checkpointed: false });
  expect(checkpointSteps(atPeriodic.events)).toEqual([3]);

  const atResume = await run({ ...spec, outDir: join(root, "at-resume"), resumeFrom: join(root, "full", "checkpoints", "3") }, { shouldSuspend: () => true });
  expect(ended(atResume)).toMatchObject({ step: 3, checkpointed: false });
  expect(lossesOf(atResume.events)).toEqual([]);
  expect(checkpointSteps(atResume.events)).toEqual([]);

  // Nothing trained yet: nothing to keep; a DPO run stops as well while it computes its reference values.
  const fresh = await run({ ...spec, outDir: join(root, "fresh") }, { shouldSuspend: () => true });
  expect(ended(fresh)).toMatchObject({ step: 0, checkpointed: false });
  expect(fresh.events.filter((e) => e.type === "progress" || e.type === "checkpoint")).toEqual([]);
  const pairs = join(root, "pairs.jsonl");
  await writeFile(pairs, ["red", "green", "blue"].map((c, i) => JSON.stringify({ input: { messages: [{ role: "user", content: `colour ${i}?` }] }, preferred_output: [{ role: "assistant", content: c }], non_preferred_output: [{ role: "assistant", content: "no" }] })).join("\n") + "\n");
  const dpo = await run({ ...spec, dataPath: pairs, outDir: join(root, "dpo") }, { shouldSuspend: () => true });
  expect(ended(dpo)).toMatchObject({ step: 0, checkpointed: false });
  expect(dpo.events.filter((e) => e.type === "progress" || e.type === "checkpoint")).toEqual([]);
});

it("cancels instead when both are asked: a cancel discards, so no checkpoint", async () => {
  const both = await run({ ...spec, checkpointEvery: 0, outDir: join(root, "both") }, { shouldStop: (steps) => steps >= 2, shouldSuspend: (steps) => steps >= 2 });
  expect(both.ended).toBeInstanceOf(TrainingCancelled);
  expect(both.ended).toMatchObject({ step: 2 });
  expect(checkpointSteps(both.events)).toEqual([]);
});

it("suspends in a worker thread: the step in flight ends, its checkpoint is reported, then the result rejects", async () => {
  const events: TrainEvent[] = [];
  const out = join(root, "worker");
  const w = startTrainingWorker({ ...spec, epochs: 100, checkpointEvery: 0, outDir: out }, (e) => {
    events.push(e);
    if (e.type === "progress" && e.step === 2) w.suspend();
  });
  const err = await w.result.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(TrainingSuspended);
  const { step } = err as TrainingSuspended;
  expect(step).toBeGreaterThanOrEqual(2);
  expect(step).toBeLessThan(200);
  expect(lossesOf(events).at(-1)?.[0]).toBe(step);
  expect(checkpointSteps(events)).toEqual([step]);
  const state = JSON.parse(await readFile(join(out, "checkpoints", String(step), "trainer_state.json"), "utf8"));
  expect(state).toMatchObject({ format: "tuneserve.lora-checkpoint", step });
});

function ended(r: { ended: unknown }) {
  expect(r.ended).toBeInstanceOf(TrainingSuspended);
  return r.ended;
}
