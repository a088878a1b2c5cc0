// Matrix products: MatMul (numpy semantics, batch dims broadcast) and Gemm (2-D, optional transposes
// and bias; used for frozen [out, in] weights so they need no transposed copy).
import { broadcastShapes, dimsConflict, shapeStr } from "../dims.js";
import type { Tensor } from "../graph.js";
import type { Dim } from "../types.js";
import { requireFloat, sameDType } from "./util.js";

/** a: [..., M, K] × b: [..., K, N] → [..., M, N] (rank-1 operands are promoted and squeezed as in numpy). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const dtype = sameDType("MatMul", a, b);
  requireFloat("MatMul", a);
  if (a.rank === 0 || b.rank === 0) throw new Error(`MatMul: operands must have rank ≥ 1 (${a}, ${b})`);
  const as = a.rank === 1 ? [1, a.shape[0]] : [...a.shape];
  const bs = b.rank === 1 ? [b.shape[0], 1] : [...b.shape];
  const k1 = as[as.length - 1];
  const k2 = bs[bs.length - 2];
  if (dimsConflict(k1, k2)) throw new Error(`MatMul: inner sizes differ: ${a.name}${shapeStr(a.shape)} × ${b.name}${shapeStr(b.shape)} (${k1} vs ${k2})`);
  const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2), "MatMul batch");
  const out: Dim[] = [...batch];
  if (a.rank !== 1) out.push(as[as.length - 2]);
  if (b.rank !== 1) out.push(bs[bs.length - 1]);
  return a.graph.node("MatMul", [a, b], [{ dtype, shape: out }])[0];
}

export type GemmOptions = { transA?: boolean; transB?: boolean; alpha?: number; beta?: number };

/** Gemm: alpha·op(a)·op(b) + beta·c with a, b 2-D and c broadcastable to [M, N]. */
export function gemm(a: Tensor, b: Tensor, c: Tensor | null = null, o: GemmOptions = {}): Tensor {
  const dtype = sameDType("Gemm", a, b, ...(c ? [c] : []));
  if (a.rank !== 2 || b.rank !== 2) throw new Error(`Gemm: operands must be 2-D (${a}, ${b})`);
  const [m, ka] = o.transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kb, n] = o.transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (dimsConflict(ka, kb)) throw new Error(`Gemm: inner sizes differ: ${a} × ${b}${o.transB ? "ᵀ" : ""} (${ka} vs ${kb})`);
  if (c) broadcastShapes([m, n], c.shape, "Gemm bias");
  return a.graph.node("Gemm", c ? [a, b, c] : [a, b], [{ dtype, shape: [m, n] }], {
    transA: { kind: "int", value: o.transA ? 1 : 0 },
    transB: { kind: "int", value: o.transB ? 1 : 0 },
    alpha: { kind: "float", value: o.alpha ?? 1 },
    beta: { kind: "float", value: o.beta ?? 1 },
  })[0];
}
