// Runs a built graph on onnxruntime for tests: feeds plain arrays, returns plain arrays.
import { Graph, toOnnx } from "../../../../gpu-runner/src/engine/graph/index.js";
import { createSession, ort } from "../../../../gpu-runner/src/engine/runtime/session.js";
import type { Arr } from "./ref.js";

export async function runGraph(g: Graph, feeds: Record<string, Arr & { dtype?: string }>, float64 = false): Promise<Record<string, Arr>> {
  const session = await createSession(toOnnx(g), { float64, threads: 1 });
  const feed: Record<string, ort.Tensor> = {};
  for (const input of g.inputs) {
    const a = feeds[input.name];
    const data =
      input.dtype === "float64" ? Float64Array.from(a.data) : input.dtype === "int64" ? BigInt64Array.from(a.data.map(BigInt)) : input.dtype === "bool" ? Uint8Array.from(a.data) : Float32Array.from(a.data);
    feed[input.name] = new ort.Tensor(input.dtype === "bool" ? "bool" : (input.dtype as "float32"), data as never, a.shape);
  }
  const res = await session.run(feed);
  const out: Record<string, Arr> = {};
  for (const [k, v] of Object.entries(res)) out[k] = { shape: [...v.dims], data: Array.from(v.data as ArrayLike<number | bigint>, Number) };
  await session.release();
  return out;
}
