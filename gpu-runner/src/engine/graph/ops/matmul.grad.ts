// Backward rules for MatMul and Gemm. A 2-D right operand (a weight) is never transposed as a node of
// its own: ORT would constant-fold Transpose(W) of a frozen W into a second copy (TOOLCHAIN.md), so the
// products use Gemm's transA/transB flags on flattened activations instead.
import type { RuleTable } from "../../autodiff/types.js";
import { reshapeLike } from "../../autodiff/util.js";
import type { Tensor } from "../graph.js";
import { mul } from "./elementwise.js";
import { gemm, matmul } from "./matmul.js";
import { reduceSum } from "./reduce.js";
import { reshape, transpose, unsqueeze } from "./shape.js";

/** Swaps the last two axes. */
const swapLast = (t: Tensor): Tensor => transpose(t, [...Array.from({ length: t.rank - 2 }, (_, i) => i), t.rank - 1, t.rank - 2]);

/** Flattens all but the last axis: [..., K] → [N, K]. */
const flat2 = (t: Tensor): Tensor => (t.rank === 2 ? t : reshape(t, [-1, t.shape[t.rank - 1]]));

function matmulGrad(a: Tensor, b: Tensor, dy: Tensor, needs: boolean[]): (Tensor | null)[] {
  // Promote rank-1 operands the way numpy does, so the rest is the [..., M, K] × [..., K, N] case.
  const a2 = a.rank === 1 ? unsqueeze(a, [0]) : a; // [..., M, K]
  const b2 = b.rank === 1 ? unsqueeze(b, [1]) : b; // [..., K, N]
  let d = dy; // [..., M, N]
  if (a.rank === 1) d = unsqueeze(d, [d.rank - 1]);
  if (b.rank === 1) d = unsqueeze(d, [d.rank]);
  let da: Tensor | null = null;
  let db: Tensor | null = null;
  if (b2.rank === 2 && a2.rank >= 2) {
    // Weight-like right operand: dA = dY·Bᵀ and dB = Σ_batch Aᵀ·dY, as 2-D Gemms over flattened rows.
    const d2 = flat2(d); // [rows, N]
    if (needs[0]) da = reshapeLike(gemm(d2, b2, null, { transB: true }), a);
    if (needs[1]) db = gemm(flat2(a2), d2, null, { transA: true });
  } else {
    if (needs[0]) da = matmul(d, swapLast(b2)); // [..., M, K]
    if (needs[1]) db = matmul(swapLast(a2), d); // [..., K, N]
  }
  if (da && a.rank === 1) da = reshapeLike(reduceSumTo(da, a2.rank), a);
  if (db && b.rank === 1) db = reshapeLike(reduceSumTo(db, b2.rank), b);
  return [da, db];
}

/** Sums away leading batch axes so a promoted rank-1 operand's gradient has rank 2. */
const reduceSumTo = (t: Tensor, rank: number): Tensor => (t.rank > rank ? reduceSum(t, Array.from({ length: t.rank - rank }, (_, i) => i), false) : t);

export const matmulGrads: RuleTable = {
  // y = a·b (batch axes broadcast; the generator sums them back)
  MatMul: ({ x: [a, b], dy: [d], needs }) => matmulGrad(a!, b!, d, needs),
  // y = alpha·op(A)·op(B) + beta·C with op = optional transpose
  Gemm: ({ node, x: [a, b, c], dy: [d], needs }) => {
    const alpha = node.attrs.alpha?.kind === "float" ? node.attrs.alpha.value : 1;
    const beta = node.attrs.beta?.kind === "float" ? node.attrs.beta.value : 1;
    const tA = node.attrs.transA?.kind === "int" && node.attrs.transA.value === 1;
    const tB = node.attrs.transB?.kind === "int" && node.attrs.transB.value === 1;
    const o = (transA: boolean, transB: boolean) => ({ transA, transB, alpha });
    // d op(A) = alpha·dY·op(B)ᵀ and d op(B) = alpha·op(A)ᵀ·dY, each written without a Transpose node.
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (needs[0]) da = tA ? gemm(b!, d, null, o(tB, true)) : gemm(d, b!, null, o(false, !tB));
    if (needs[1]) db = tB ? gemm(d, a!, null, o(true, tA)) : gemm(a!, d, null, o(!tA, false));
    const dc = c && needs[2] ? (beta === 1 ? d : mul(d, beta)) : null;
    return c ? [da, db, dc] : [da, db];
  },
};
