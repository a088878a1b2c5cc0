// Graph builder: build-time shape and dtype checks with readable errors, symbolic dims, and the
// ONNX it serializes (FLOAT attributes for whole values, external data, outputs renamed without copies, omitted optional outputs).
import onnxProto from "onnx-proto";
import { describe, expect, it } from "vitest";
import { Graph, op, toOnnx } from "../../../../gpu-runner/src/engine/graph/index.js";
import { dimAdd, dimOrOne } from "../../../../gpu-runner/src/engine/graph/dims.js";
import { runGraph } from "./run.js";

const { onnx } = onnxProto;

describe("graph builder checks", () => {
  const g = new Graph("checks");
  const a = g.input("a", "float32", ["B", 3, 4]);
  const b = g.input("b", "float32", [5, 6]);
  const c = g.input("c", "float64", [4]);
  const ids = g.input("ids", "int64", ["B"]);

  it.each([
    ["matmul inner sizes", () => op.matmul(a, b), /MatMul: inner sizes differ.*\(4 vs 5\)/],
    ["broadcast", () => op.add(a, b), /Add: shapes \[B, 3, 4\] and \[5, 6\] do not broadcast/],
    ["distinct symbols", () => op.add(a, g.input("z", "float32", ["T", 3, 4])), /B vs T are different symbols/],
    ["dtype mismatch", () => op.mul(a, c), /Mul: dtypes differ/],
    ["reshape element count", () => op.reshape(b, [7, 4]), /30 elements cannot become \[7, 4\]/],
    ["transpose perm", () => op.transpose(b, [0, 0]), /not a permutation/],
    ["axis range", () => op.softmax(b, 2), /axis 2 is out of range for rank 2/],
    ["gemm inner sizes", () => op.gemm(b, b), /Gemm: inner sizes differ/],
    ["float op on ints", () => op.exp(ids), /float tensor is required/],
    ["squeeze a non-1 axis", () => op.squeeze(b, [0]), /axis 0 has size 5/],
    ["split sizes", () => op.split(b, 1, [2, 2]), /sum to 4, not 6/],
    ["tensor from another graph", () => op.add(a, new Graph("other").input("x", "float32", [4])), /belongs to graph other/],
    ["duplicate names", () => g.input("a", "float32", [1]), /"a" is already used/],
  ])("rejects %s", (_n, f, msg) => {
    expect(f).toThrow(msg);
  });

  it("infers symbolic shapes", () => {
    const past = g.input("past", "float32", ["P", "B", 2]);
    const now = g.input("now", "float32", ["T", "B", 2]);
    const cat = op.concat([past, now], 0);
    expect(cat.shape).toEqual([dimAdd("P", "T"), "B", 2]);
    expect(op.matmul(a, op.transpose(a, [0, 2, 1])).shape).toEqual(["B", 3, 3]);
    expect(op.gather(b, ids).shape).toEqual(["B", 6]);
    expect(op.reduceSum(a, [1], false).shape).toEqual(["B", 4]);
  });

  it("broadcasts a size declared as B-or-1 against B, and runs with either", async () => {
    const h = new Graph("or-one");
    const x = h.input("x", "float32", ["B", 1, 2]);
    const w = h.input("w", "float32", [dimOrOne("B"), 2, 3]);
    const y = op.matmul(x, w);
    expect(y.shape).toEqual(["B", 1, 3]);
    h.output(y, "y");
    const x2 = { data: [1, 2, 3, 4], shape: [2, 1, 2] }; // two rows
    const shared = await runGraph(h, { x: x2, w: { data: [1, 0, 1, 0, 1, 1], shape: [1, 2, 3] } });
    expect(shared.y.data).toEqual([1, 2, 3, 3, 4, 7]);
    const perRow = await runGraph(h, { x: x2, w: { data: [1, 0, 1, 0, 1, 1, 2, 0, 0, 0, 2, 0], shape: [2, 2, 3] } });
    expect(perRow.y.data).toEqual([1, 2, 3, 6, 8, 0]);
  });
});

describe("ONNX serialization", () => {
  it("writes whole-valued float attributes as FLOAT and renames outputs without Identity", () => {
    const g = new Graph("ser");
    const x = g.input("x", "float32", [2, 2]);
    g.output(op.gemm(x, x, null, { alpha: 1, beta: 1 }), "y");
    const m = onnx.ModelProto.decode(toOnnx(g));
    const gemm = m.graph!.node!.find((n) => n.opType === "Gemm")!;
    const alpha = gemm.attribute!.find((at) => at.name === "alpha")!;
    expect(alpha.type).toBe(onnx.AttributeProto.AttributeType.FLOAT);
    expect(alpha.f).toBe(1);
    expect(m.graph!.node!.some((n) => n.opType === "Identity")).toBe(false);
    expect(gemm.output).toEqual(["y"]);
    expect(Number(m.opsetImport![0].version)).toBe(21);
  });

  it("writes an omitted optional output as an empty name, and runs it", async () => {
    const g = new Graph("omit");
    const x = g.input("x", "float32", [2, 3]);
    const [y, mask] = g.node("Dropout", [x], [{ dtype: "float32", shape: x.shape }, null]);
    expect(mask).toBeNull();
    g.output(op.mul(y!, 2), "y");
    const dropout = onnx.ModelProto.decode(toOnnx(g)).graph!.node!.find((n) => n.opType === "Dropout")!;
    expect(dropout.output).toEqual([y!.name, ""]);
    const out = await runGraph(g, { x: { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] } });
    expect(out.y.data).toEqual([2, 4, 6, 8, 10, 12]);
  });

  it("asks SkipSimplifiedLayerNormalization for the normed output and the sum only", () => {
    const g = new Graph("skip");
    const x = g.input("x", "float32", ["B", 4]);
    const { sum, normed } = op.skipRmsNorm(x, g.input("s", "float32", ["B", 4]), g.input("w", "float32", [4]), 1e-5);
    g.output(normed, "normed");
    g.output(sum, "sum");
    const node = onnx.ModelProto.decode(toOnnx(g)).graph!.node!.find((n) => n.opType === "SkipSimplifiedLayerNormalization")!;
    expect(node.output).toEqual(["normed", "", "", "sum"]);
  });

  it("computes symbolic sizes at run time (reshape to [B·T, H] and back)", async () => {
    const g = new Graph("dims");
    const x = g.input("x", "float32", ["B", "T", 3]);
    const flat = op.reshape(x, [-1, 3]);
    g.output(op.reshape(op.mul(flat, 2), ["B", "T", 3]), "y");
    const data = Array.from({ length: 12 }, (_, i) => i);
    const out = await runGraph(g, { x: { shape: [2, 2, 3], data } });
    expect(out.y).toEqual({ shape: [2, 2, 3], data: data.map((v) => 2 * v) });
  });

  it("reads external initializers from a named buffer at an offset", async () => {
    const g = new Graph("ext");
    const x = g.input("x", "float32", [2]);
    const w = g.external("w", "float32", [2], "blob.bin", 8, 8);
    g.output(op.add(x, w), "y");
    const blob = new Float32Array([9, 9, 1.5, -2]);
    const { createSession, ort } = await import("../../../../gpu-runner/src/engine/runtime/session.js");
    const s = await createSession(toOnnx(g), { externalData: [{ path: "blob.bin", data: new Uint8Array(blob.buffer) }], threads: 1 });
    const r = await s.run({ x: new ort.Tensor("float32", Float32Array.from([1, 1]), [2]) });
    expect(Array.from(r.y.data as Float32Array)).toEqual([2.5, -1]);
    await s.release();
  });
});
