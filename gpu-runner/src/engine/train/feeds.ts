// Session feeds for the training graph: token rows → input_ids, positions 0…T−1 and the LoRA scale,
// plus next-token targets, the loss mask and the loss denominator (and a DPO batch's reference log-likelihoods).
import { ort } from "../runtime/session.js";

export type TrainBatch = {
  /** [B][T] token ids (rows padded to one length by the caller). */
  rows: number[][];
  /** [B][T] the token each position predicts. */
  targets: number[][];
  /** [B][T] 1 where the position counts in the loss, else 0. */
  mask: number[][];
  /** DPO: rows come in pairs (chosen, rejected); the reference model's log-likelihood of each row's trained tokens, [B]. */
  ref?: number[];
};

/**
 * Plain next-token batch over whole rows: position t predicts row[t+1]. Shorter rows are right-padded
 * with token 0 outside the loss mask (causal attention keeps the padding out of real positions).
 */
export function nextTokenBatch(rows: number[][]): TrainBatch {
  const T = Math.max(0, ...rows.map((r) => r.length));
  if (rows.length === 0 || T < 2) throw new Error(`token rows: the longest row has ${T} token(s); next-token training needs at least 2`);
  const padded = rows.map((r) => [...r, ...Array<number>(T - r.length).fill(0)]);
  return {
    rows: padded,
    targets: rows.map((r) => Array.from({ length: T }, (_, t) => (t + 1 < r.length ? r[t + 1] : 0))),
    mask: rows.map((r) => Array.from({ length: T }, (_, t) => (t + 1 < r.length ? 1 : 0))),
  };
}

/** Positions that count in the loss. */
export const maskedCount = (b: TrainBatch): number => b.mask.flat().reduce((s, v) => s + v, 0);

/** What the loss averages over: the masked positions, or the pairs of a DPO batch. */
export const lossUnits = (b: TrainBatch): number => (b.ref ? b.ref.length / 2 : maskedCount(b));

/** Forward + loss inputs for one micro-batch; `denominator` is the masked-token count of the whole step. */
export function batchFeeds(b: TrainBatch, scale: number, denominator: number, dtype: "float32" | "float64"): Record<string, ort.Tensor> {
  const B = b.rows.length;
  const T = b.rows[0].length;
  const F = dtype === "float64" ? Float64Array : Float32Array;
  const ints = (xs: number[]) => BigInt64Array.from(xs.map(BigInt));
  return {
    input_ids: new ort.Tensor("int64", ints(b.rows.flat()), [B, T]),
    position_ids: new ort.Tensor("int64", ints(b.rows.flatMap((r) => r.map((_, t) => t))), [B, T]),
    lora_scale: new ort.Tensor(dtype, F.from([scale]) as never, []),
    targets: new ort.Tensor("int64", ints(b.targets.flat()), [B, T]),
    loss_mask: new ort.Tensor(dtype, F.from(b.mask.flat()) as never, [B, T]),
    loss_denominator: new ort.Tensor(dtype, F.from([denominator]) as never, []),
    ...(b.ref ? { ref_logp: new ort.Tensor(dtype, F.from(b.ref) as never, [B]) } : {}),
  };
}
