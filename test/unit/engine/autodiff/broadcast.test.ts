// Summing a broadcast gradient back to its input's shape: which axes broadcasting created or stretched
// (numbers, symbols, "X|1" sizes), the readable errors, and float64 gradients of inputs that broadcast.
import { describe, expect, it } from "vitest";
import { op } from "../../../../gpu-runner/src/engine/graph/index.js";
import { dimOrOne } from "../../../../gpu-runner/src/engine/graph/dims.js";
import { broadcastAxes } from "../../../../gpu-runner/src/engine/autodiff/broadcast.js";
import { rand } from "../graph/ref.js";
import { gradCheck } from "./gradcheck.js";

describe("broadcastAxes", () => {
  it.each([
    ["prepended axes", [2, 4, 3], [3], { lead: 2, stretched: [] }],
    ["a stretched axis", [2, 4, 3], [2, 1, 3], { lead: 0, stretched: [1] }],
    ["both, into a scalar", [2, 3], [], { lead: 2, stretched: [] }],
    ["a stretched axis against a symbol", ["B", "T", 3], [1, "T", 1], { lead: 0, stretched: [0, 2] }],
    ["a symbol the builder equated with another", ["B", 3], ["T", 3], { lead: 0, stretched: [], orOne: [] }],
    ["an X|1 axis, decided at run time", [4, "B", 3], [dimOrOne("B"), 1], { lead: 1, stretched: [2], orOne: [0] }],
  ] as const)("finds %s", (_n, from, to, want) => {
    expect(broadcastAxes(from, to, "t")).toMatchObject(want);
  });
  it("rejects a gradient of lower rank or a size that cannot have broadcast", () => {
    expect(() => broadcastAxes([3], [2, 3], "gradient of x")).toThrow(/gradient of x: gradient of rank 1 cannot reduce to rank 2/);
    expect(() => broadcastAxes([2, 4], [2, 3], "gradient of x")).toThrow(/gradient of x: gradient axis 1 has size 4, input has 3/);
  });
});

describe("gradients of inputs declared with a size that is X or 1 at run time", () => {
  // w: [B|1, 2, 3] is one matrix shared by every row (fed with 1) or one per row (fed with B).
  const x = rand([2, 1, 2], 80);
  it.each([
    ["shared by every row (fed with size 1)", rand([1, 2, 3], 81)],
    ["given per row (fed with size B)", rand([2, 2, 3], 82)],
  ])("match finite differences when %s", async (_n, w) => {
    const r = await gradCheck({ x, w }, (t) => op.matmul(t.x, t.w), { shapes: { x: ["B", 1, 2], w: [dimOrOne("B"), 2, 3] }, outShape: [2, 1, 3] });
    expect(r.worst).toBeLessThan(1e-6);
  });
  it("match finite differences for an elementwise op with a stretched and a prepended axis too", async () => {
    const r = await gradCheck(
      { a: rand([3, 2, 4], 83), b: rand([1, 1, 4], 84) },
      (t) => op.mul(t.a, op.reshape(t.b, [dimOrOne("B"), 4])),
      { shapes: { a: [3, "B", 4], b: [1, dimOrOne("B"), 4] }, outShape: [3, 2, 4] },
    );
    expect(r.worst).toBeLessThan(1e-6);
  });
});
