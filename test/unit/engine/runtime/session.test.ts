import { describe, expect, it } from "vitest";
import { availableParallelism } from "node:os";
import { loadModelConfig } from "../../../../gpu-runner/src/engine/model/load-config.js";
import { frozenMatmulParams } from "../../../../gpu-runner/src/engine/model/names.js";
import { ONE_THREAD_BELOW_PARAMS, mergeFeeds, ort, servingThreads, spinBesideEventLoop, spinSetting } from "../../../../gpu-runner/src/engine/runtime/session.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

describe("session options", () => {
  it("spins within runs unless TUNESERVE_ORT_SPIN says 0/false/off, and names the variable otherwise", () => {
    for (const v of [undefined, "", "1", "true", " ON "]) expect(spinSetting(v)).toBe(true);
    for (const v of ["0", "false", "Off"]) expect(spinSetting(v)).toBe(false);
    expect(() => spinSetting("maybe")).toThrow(/TUNESERVE_ORT_SPIN=maybe/);
  });

  it("spins beside an event loop only with a core to spare, unless TUNESERVE_ORT_SPIN says otherwise", () => {
    const cores = availableParallelism();
    expect(spinBesideEventLoop(cores, undefined)).toBe(false);
    expect(spinBesideEventLoop(cores - 1, undefined)).toBe(true);
    expect(spinBesideEventLoop(cores, "1")).toBe(true);
    expect(spinBesideEventLoop(1, "0")).toBe(false);
  });

  it("serves small models on one intra-op thread and larger ones on two", async () => {
    expect(servingThreads(frozenMatmulParams(await loadModelConfig(`${fixturesDir}/micro-llama/base`)))).toBe(1);
    expect(servingThreads(ONE_THREAD_BELOW_PARAMS - 1)).toBe(1);
    expect(servingThreads(ONE_THREAD_BELOW_PARAMS)).toBe(2);
    expect(servingThreads(5_260_000)).toBe(2); // the tiny benchmark preset
  });

  it("merges feeds by name, later parts winning", () => {
    const t = (n: number) => new ort.Tensor("float32", Float32Array.of(n), [1]);
    const a = t(1);
    const b = t(2);
    const c = t(3);
    expect(mergeFeeds({ x: a, y: b }, { y: c })).toEqual({ x: a, y: c });
  });
});
