// Neural-network building blocks composed from primitive ops (so autodiff needs no extra rules):
// RMSNorm in the exact Pow→ReduceMean→Add→Sqrt→Div→Mul form ORT fuses into SimplifiedLayerNormalization.
import type { Tensor } from "../graph.js";
import { add, div, mul, pow, sqrt } from "./elementwise.js";
import { reduceMean } from "./reduce.js";

/** RMSNorm over the last axis: w ⊙ x / √(mean(x²) + eps). x: [..., H], w: [H]. */
export function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const ms = reduceMean(pow(x, 2), [-1]); // [..., 1]
  return mul(div(x, sqrt(add(ms, eps))), w); // [..., H]
}
