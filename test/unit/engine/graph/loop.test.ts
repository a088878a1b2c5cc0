// toOnnxLoop: a built graph run as the body of one ONNX Loop, against the same steps computed in plain JS.
import { describe, expect, it } from "vitest";
import { Graph, op } from "../../../../gpu-runner/src/engine/graph/index.js";
import { loopNames, toOnnxLoop } from "../../../../gpu-runner/src/engine/graph/loop.js";
import { createSession, ort } from "../../../../gpu-runner/src/engine/runtime/session.js";

/**
 * Body: x ← x·w + iteration (w read from the outer graph), a history that grows by one x each iteration (its shape
 * changes from one iteration to the next), the loop going on while x stays under `limit`; x is scanned.
 */
function body(): Graph {
  const g = new Graph("toy");
  const iter = g.input("iteration", "int64", []);
  g.input("condition", "bool", []);
  const x = g.input("x", "float32", [2]);
  const history = g.input("history", "float32", ["H"]);
  const w = g.input("w", "float32", [2]);
  const limit = g.input("limit", "float32", []);
  const next = op.add(op.mul(x, w), op.cast(iter, "float32"));
  g.output(next, "x_next");
  g.output(op.concat([history, next], 0), "history_next");
  g.output(op.less(op.reduceMax(next, [0], false), limit), "continues");
  g.output(next, "x_scan");
  return g;
}

const spec = { iteration: "iteration", condition: "condition", continues: "continues", carried: [["x", "x_next"], ["history", "history_next"]] as [string, string][], scanned: ["x_scan"] };

async function run(trips: number, limit: number) {
  const session = await createSession(toOnnxLoop(body(), spec), { threads: 1 });
  const f32 = (a: number[], dims: number[]) => new ort.Tensor("float32", Float32Array.from(a), dims);
  const out = await session.run({
    [loopNames.tripCount]: new ort.Tensor("int64", BigInt64Array.from([BigInt(trips)]), []),
    [loopNames.condition]: new ort.Tensor("bool", Uint8Array.from([1]), []),
    [loopNames.initial("x")]: f32([1, 2], [2]),
    [loopNames.initial("history")]: f32([], [0]),
    w: f32([2, 0.5], [2]),
    limit: f32([limit], []),
  });
  await session.release();
  const arr = (name: string) => ({ dims: [...out[name].dims], data: Array.from(out[name].data as Float32Array) });
  return { x: arr(loopNames.final("x_next")), history: arr(loopNames.final("history_next")), scan: arr(loopNames.scan("x_scan")) };
}

function reference(trips: number, limit: number) {
  let x = [1, 2];
  const steps: number[][] = [];
  for (let i = 0; i < trips; i++) {
    x = [x[0] * 2 + i, x[1] * 0.5 + i];
    steps.push(x);
    if (!(Math.max(...x) < limit)) break;
  }
  return { x, steps };
}

describe("toOnnxLoop", () => {
  it("runs the trip count, carrying state whose shape grows, reading outer inputs, scanning each step", async () => {
    const got = await run(5, 1e9);
    const ref = reference(5, 1e9);
    expect(got.x.data).toEqual(ref.x);
    expect(got.scan.dims).toEqual([5, 2]);
    expect(got.scan.data).toEqual(ref.steps.flat());
    expect(got.history.dims).toEqual([10]);
    expect(got.history.data).toEqual(ref.steps.flat());
  });

  it("stops early when the body's condition turns false, after the step that turned it", async () => {
    const got = await run(10, 20);
    const ref = reference(10, 20);
    expect(ref.steps.length).toBeLessThan(10);
    expect(got.scan.dims).toEqual([ref.steps.length, 2]);
    expect(got.scan.data).toEqual(ref.steps.flat());
    expect(got.x.data).toEqual(ref.x);
  });

  it("runs a body whose node omits an optional output", async () => {
    const g = new Graph("omit");
    g.input("iteration", "int64", []);
    g.input("condition", "bool", []);
    const x = g.input("x", "float32", [2]);
    const [kept] = g.node("Dropout", [x], [{ dtype: "float32", shape: [2] }, null]); // no mask
    g.output(op.mul(kept!, 2), "x_next");
    g.output(g.constant("bool", [], Uint8Array.of(1)), "continues");
    const session = await createSession(toOnnxLoop(g, { iteration: "iteration", condition: "condition", continues: "continues", carried: [["x", "x_next"]], scanned: [] }), { threads: 1 });
    const out = await session.run({
      [loopNames.tripCount]: new ort.Tensor("int64", BigInt64Array.from([3n]), []),
      [loopNames.condition]: new ort.Tensor("bool", Uint8Array.from([1]), []),
      [loopNames.initial("x")]: new ort.Tensor("float32", Float32Array.from([1, -2]), [2]),
    });
    await session.release();
    expect(Array.from(out[loopNames.final("x_next")].data as Float32Array)).toEqual([8, -16]);
  });

  it("names what the body lacks", () => {
    expect(() => toOnnxLoop(body(), { ...spec, scanned: ["nope"] })).toThrow(/loop over graph toy: it has no output "nope"/);
  });
});
