import { describe, expect, it } from "vitest";
import { availableParallelism } from "node:os";
import { mergeFeeds, ort, spinBesideEventLoop, spinSetting } from "../../../../gpu-runner/src/engine/runtime/session.js";

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

  it("merges feeds by name, later parts winning", () => {
    const t = (n: number) => new ort.Tensor("float32", Float32Array.of(n), [1]);
    const a = t(1);
    const b = t(2);
    const c = t(3);
    expect(mergeFeeds({ x: a, y: b }, { y: c })).toEqual({ x: a, y: c });
  });
});
