// Merging a LoRA adapter into the base weights (W' = W + scale·B·A), computed by a small ORT graph
// so the O(out·in·r) work runs in native code; the merged weights override the base ones.
import { Graph, op, toOnnx } from "../graph/index.js";
import { modulePath, projectionDims } from "../model/names.js";
import type { ModelConfig } from "../model/config.js";
import type { WeightStore } from "../model/weights.js";
import { createSession, ort } from "../runtime/session.js";
import { loraKey, type LoraAdapter } from "./peft.js";

/** Overrides every target weight in `weights` with its merged value. */
export async function mergeLora(cfg: ModelConfig, weights: WeightStore, adapter: LoraAdapter): Promise<void> {
  const g = new Graph("lora_merge");
  const W = g.input("W", "float32", ["out", "in"]);
  const A = g.input("A", "float32", ["r", "in"]);
  const B = g.input("B", "float32", ["out", "r"]);
  const s = g.input("scale", "float32", []);
  g.output(op.add(W, op.mul(op.matmul(B, A), s)), "merged"); // [out, in]
  const session = await createSession(toOnnx(g));
  try {
    for (let layer = 0; layer < cfg.layers; layer++) {
      for (const m of adapter.targets) {
        const [out, inF] = projectionDims(cfg, m);
        const name = `${modulePath(layer, m)}.weight`;
        const lw = adapter.weights.get(loraKey(layer, m));
        if (!lw) continue;
        const res = await session.run({
          W: new ort.Tensor("float32", weights.read(name), [out, inF]),
          A: new ort.Tensor("float32", lw.a, [adapter.rank, inF]),
          B: new ort.Tensor("float32", lw.b, [out, adapter.rank]),
          scale: new ort.Tensor("float32", Float32Array.of(adapter.scale), []),
        });
        weights.override(name, res.merged.data as Float32Array);
      }
    }
  } finally {
    await session.release();
  }
}
