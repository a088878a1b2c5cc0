// One decoder layer's attention in standard ops, reading the KV cache in place: scores over the cached keys
// (masked by cache_mask), the recent segment of a decode loop, and the new tokens (causal), with no concatenation
// of the cache. Works for any cache size, float32 and float64.
import { op, type Tensor } from "../graph/index.js";
import { dimAdd, dimMul } from "../graph/dims.js";
import type { Dim } from "../graph/types.js";
import type { ModelConfig } from "./config.js";

/** Keys and values [B, kvH, *, d] of one layer. */
export type KeyValue = { key: Tensor; value: Tensor };

/** Large finite negative for masked scores: −inf would give NaN on fully masked rows. */
export const MASKED = -1e9;

/** What every layer's attention shares: RoPE, and which [cache | (recent |) new] slots each new token may see. */
export type AttentionShared = {
  cfg: Pick<ModelConfig, "heads" | "kvHeads" | "headDim">;
  /** RoPE on flat q|k heads [B, T, heads·d] → [B, T, heads, d] (rope.ts headsRope). */
  rope: (x: Tensor, heads: number) => Tensor;
  /** bool [B, 1, (1,) T, C+N]: the extra axis at 2 with GQA, for the scores' 5-D view. */
  allowed: Tensor;
  /** The slots after the cache: "T", or "R+T" with a recent segment. */
  after: Dim;
};

/** The last position of x [B, T, …] as [B, 1, …]. */
export const lastPosition = (x: Tensor, axis = 1): Tensor => op.slice(x, axis, -1, 2 ** 31, 1);

/**
 * Attention of new tokens q|k|v [B, T, (n + 2·kvH)·d] over the cache `past`, the `recent` segment if any, and
 * themselves. Returns the output [B, Q, n·d] and the keys/values after the cache [B, kvH, N, d] (recent | new).
 * With `lastQuery`, only the last position asks (Q = 1; every position's keys and values are still returned): the
 * last layer of a graph that outputs the last position's logits needs no other.
 */
export function cachedAttention(s: AttentionShared, qkvFlat: Tensor, past: KeyValue, recent: KeyValue | null, lastQuery = false): { out: Tensor; key: Tensor; value: Tensor } {
  const { heads, kvHeads: kvH, headDim: d } = s.cfg;
  const rep = heads / kvH;
  const N = s.after;
  const Q: Dim = lastQuery ? 1 : "T";
  const [qk, vFlat] = op.split(qkvFlat, -1, [(heads + kvH) * d, kvH * d]);
  // 1/√d scales q here, ahead of RoPE (linear, so the same), not next to the score MatMul: ORT would fold it into
  // the MatMul's alpha there, and MLAS's one-row kernels (each decode step's q·Kᵀ per row and head) take
  // alpha = 1 only: with any other it packs K at every call, twice the time of those GEMMs at 16 rows.
  const g = qkvFlat.graph;
  const qkScale = Array.from({ length: (heads + kvH) * d }, (_, i) => (i < heads * d ? 1 / Math.sqrt(d) : 1));
  const scaled = op.mul(qk, g.constant(qk.dtype, [(heads + kvH) * d], qk.dtype === "float64" ? Float64Array.from(qkScale) : Float32Array.from(qkScale)));
  const [qAll, k] = op.split(s.rope(scaled, heads + kvH), 2, [heads, kvH]); // [B, T, n, d], [B, T, kvH, d]
  const q = lastQuery ? lastPosition(qAll) : qAll; // [B, Q, n, d]
  const allowed = lastQuery ? lastPosition(s.allowed, -2) : s.allowed;
  const v = op.reshape(vFlat, ["B", "T", kvH, d]);
  const tokK = op.transpose(k, [0, 2, 1, 3]); // [B, kvH, T, d]
  const tokV = op.transpose(v, [0, 2, 1, 3]);
  const newK = recent ? op.concat([recent.key, tokK], 2) : tokK; // [B, kvH, N, d]
  const newV = recent ? op.concat([recent.value, tokV], 2) : tokV;
  // GQA as in the training graph: the rep query heads of a kv head fold into the row axis
  // [B, kvH, rep·T, d], so each (row, kv head) is one GEMM with rep·T rows rather than rep GEMMs of
  // T rows (at decode, T = 1: half the tiny GEMMs for rep = 2). The mask is applied on a 5-D view.
  // Without GQA (rep = 1) every reshape below would be a no-op node, so they are left out.
  const gqa = (t: Tensor, shape: Dim[]) => (rep > 1 ? op.reshape(t, shape) : t);
  const repQ = dimMul(rep, Q);
  const qs = gqa(op.transpose(q, [0, 2, 1, 3]), ["B", kvH, repQ, d]); // [B, n, Q, d] → [B, kvH, rep·Q, d]
  const tr = (t: Tensor) => op.transpose(t, [0, 1, 3, 2]); // ORT folds it into the MatMul: the cache is never copied
  const scores = op.concat([op.matmul(qs, tr(past.key)), op.matmul(qs, tr(newK))], -1); // [B, kvH, rep·Q, C+N]
  const masked = op.where(allowed, gqa(scores, ["B", kvH, rep, Q, dimAdd("C", N)]), MASKED);
  const probs = gqa(op.softmax(masked, -1), ["B", kvH, repQ, dimAdd("C", N)]);
  const pCache = op.slice(probs, -1, 0, g.dim("C"), "C");
  const pNew = op.slice(probs, -1, g.dim("C"), g.dim(dimAdd("C", N)), N);
  const ctx = op.add(op.matmul(pCache, past.value), op.matmul(pNew, newV)); // [B, kvH, rep·Q, d]
  const out = op.reshape(op.transpose(gqa(ctx, ["B", heads, Q, d]), [0, 2, 1, 3]), ["B", Q, heads * d]); // [B, Q, n·d]
  return { out, key: newK, value: newV };
}
