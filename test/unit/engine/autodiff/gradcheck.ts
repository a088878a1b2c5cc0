// Float64 gradient check for tests: the analytic gradient of L = Σ w ⊙ f(inputs) from the generator,
// against central finite differences of L computed by running the same forward graph on onnxruntime.
import { Graph, op, toOnnx, type Tensor } from "../../../../gpu-runner/src/engine/graph/index.js";
import { gradients } from "../../../../gpu-runner/src/engine/autodiff/index.js";
import { createSession, ort } from "../../../../gpu-runner/src/engine/runtime/session.js";
import type { Shape } from "../../../../gpu-runner/src/engine/graph/types.js";
import { rand, size, type Arr } from "../graph/ref.js";

export type CheckResult = { worst: number; analytic: Record<string, number[]>; numeric: Record<string, number[]> };

export type CheckOptions = {
  /** Which inputs to differentiate (default all). */
  wrt?: string[];
  /** Declared (possibly symbolic) input shapes; default the fed shapes. */
  shapes?: Record<string, Shape>;
  /** The run-time output shape, needed when the output shape is symbolic. */
  outShape?: number[];
  /** Int64 inputs (indices), fed as given and never differentiated. */
  ints?: Record<string, Arr>;
  h?: number;
};

/** Worst |analytic − numeric| / max(1, max |numeric|) over all checked elements. */
export async function gradCheck(inputs: Record<string, Arr>, f: (t: Record<string, Tensor>, g: Graph) => Tensor, o: CheckOptions = {}): Promise<CheckResult> {
  const g = new Graph("gradcheck");
  const t: Record<string, Tensor> = {};
  for (const [k, a] of Object.entries(inputs)) t[k] = g.input(k, "float64", o.shapes?.[k] ?? a.shape);
  for (const [k, a] of Object.entries(o.ints ?? {})) t[k] = g.input(k, "int64", a.shape);
  const y = f(t, g);
  const outShape = o.outShape ?? (y.shape.every((d) => typeof d === "number") ? (y.shape as number[]) : undefined);
  if (!outShape) throw new Error("gradCheck: symbolic output shape; pass outShape");
  const w = g.constant("float64", outShape, Float64Array.from(rand(outShape, 99).data));
  // A weight of the declared shape: Reshape keeps the symbolic dims when the output has them.
  const wy = y.shape.every((d) => typeof d === "number") ? w : g.node("Reshape", [w, op.shapeOf(y)], [{ dtype: "float64", shape: y.shape }])[0];
  const loss = y.rank === 0 ? op.mul(y, w) : op.reduceSum(op.mul(y, wy), y.shape.map((_, i) => i), false);
  g.output(loss, "loss");
  const wrt = o.wrt ?? Object.keys(inputs);
  const grads = gradients(loss, wrt.map((k) => t[k]));
  wrt.forEach((k) => g.output(grads.get(t[k])!, `grad_${k}`));
  const session = await createSession(toOnnx(g), { float64: true, threads: 1 });
  const feed = (vals: Record<string, Arr>) => {
    const fd: Record<string, ort.Tensor> = {};
    for (const [k, a] of Object.entries(vals)) fd[k] = new ort.Tensor("float64", Float64Array.from(a.data), a.shape);
    for (const [k, a] of Object.entries(o.ints ?? {})) fd[k] = new ort.Tensor("int64", BigInt64Array.from(a.data.map(BigInt)), a.shape);
    return fd;
  };
  const base = await session.run(feed(inputs));
  const analytic: Record<string, number[]> = {};
  const numeric: Record<string, number[]> = {};
  const h = o.h ?? 1e-5;
  let worst = 0;
  for (const k of wrt) {
    const ga = Array.from(base[`grad_${k}`].data as Float64Array);
    if (ga.length !== size(inputs[k].shape)) throw new Error(`gradient of ${k} has ${ga.length} elements, input has ${size(inputs[k].shape)}`);
    const gn: number[] = [];
    for (let i = 0; i < inputs[k].data.length; i++) {
      const at = async (delta: number) => {
        const data = inputs[k].data.slice();
        data[i] += delta;
        const r = await session.run(feed({ ...inputs, [k]: { shape: inputs[k].shape, data } }));
        return (r.loss.data as Float64Array)[0];
      };
      gn.push(((await at(h)) - (await at(-h))) / (2 * h));
    }
    const scale = Math.max(1, ...gn.map(Math.abs));
    gn.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - ga[i]) / scale)));
    analytic[k] = ga;
    numeric[k] = gn;
  }
  await session.release();
  return { worst, analytic, numeric };
}
