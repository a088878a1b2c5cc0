// Examples → training rows → shuffled batches. Packing concatenates consecutive short examples into
// rows of up to seqLen tokens; attention then crosses example boundaries (the train graph has one causal
// mask per row and positions 0…T−1), as many trainers do, while the loss never predicts across one.
import type { Rng } from "../generate/rng.js";
import type { TrainBatch } from "../train/feeds.js";
import { exampleTokens, type Example, type Sequence } from "./render.js";

/**
 * A training row: token ids and whether each token is a target (see Example). A DPO pair's row also
 * holds the reference model's log-likelihood of each answer, [chosen, rejected], once computed.
 */
export type Row = Example & { ref?: [number, number] };

/** Packs examples in order, greedily, into rows of at most seqLen tokens (an example is never split). */
export function packExamples(examples: Example[], seqLen: number): Row[] {
  const rows: Row[] = [];
  let cur: Row | null = null;
  for (const ex of examples) {
    if (ex.rejected) throw new Error("packExamples: preference pairs are not packed; each answer is scored as a sequence of its own");
    if (ex.ids.length > seqLen) throw new Error(`packExamples: an example has ${ex.ids.length} tokens, more than seqLen=${seqLen}; truncate first`);
    if (cur && cur.ids.length + ex.ids.length <= seqLen) {
      // train[0] of every example is false, so the boundary token is never predicted from the previous example.
      cur.ids.push(...ex.ids);
      cur.train.push(...ex.train);
    } else {
      cur = { ids: [...ex.ids], train: [...ex.train] };
      rows.push(cur);
    }
  }
  return rows;
}

/** A seeded Fisher–Yates permutation of 0…n−1. */
export function shuffledOrder(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * Rows → one TrainBatch, right-padded with token 0 to the longest row: position t predicts ids[t+1] and
 * counts when train[t+1]. Padding sits after every real token, so causal attention keeps it out.
 * DPO pairs become two rows each, chosen then rejected, with their reference log-likelihoods.
 */
export function rowsToBatch(rows: Row[]): TrainBatch {
  const pairs = rows.some((r) => r.rejected);
  if (pairs && !rows.every((r) => r.rejected && r.ref)) throw new Error("rowsToBatch: a batch of preference pairs needs every row's rejected answer and reference log-likelihoods");
  const seqs: Sequence[] = pairs ? rows.flatMap((r) => [r, r.rejected!]) : rows;
  const T = Math.max(...seqs.map((r) => r.ids.length));
  return {
    rows: seqs.map((r) => Array.from({ length: T }, (_, t) => r.ids[t] ?? 0)),
    targets: seqs.map((r) => Array.from({ length: T }, (_, t) => r.ids[t + 1] ?? 0)),
    mask: seqs.map((r) => Array.from({ length: T }, (_, t) => (r.train[t + 1] ? 1 : 0))),
    ...(pairs ? { ref: rows.flatMap((r) => r.ref!) } : {}),
  };
}

/** Optimizer steps per epoch: ⌈rows / (batchSize·gradAccum)⌉. */
export const stepsPerEpoch = (rows: number, batchSize: number, gradAccum: number): number => Math.ceil(rows / (batchSize * gradAccum));

/** The micro-batches of step `k` of an epoch whose row order is `order` (the last step may be short). */
export function stepMicroBatches(rows: Row[], order: number[], k: number, batchSize: number, gradAccum: number): { micro: TrainBatch[]; tokens: number } {
  const per = batchSize * gradAccum;
  const picked = order.slice(k * per, (k + 1) * per).map((i) => rows[i]);
  if (picked.length === 0) throw new Error(`step ${k} of the epoch has no rows (${order.length} rows, ${per} per step)`);
  const micro: TrainBatch[] = [];
  for (let i = 0; i < picked.length; i += batchSize) micro.push(rowsToBatch(picked.slice(i, i + batchSize)));
  return { micro, tokens: picked.reduce((s, r) => s + exampleTokens(r), 0) };
}

/** Tokens of the rows that the first `k` steps of an epoch take (`per` rows a step, in `order`). */
export function tokensBefore(rows: Row[], order: number[], k: number, per: number): number {
  return order.slice(0, k * per).reduce((n, i) => n + exampleTokens(rows[i]), 0);
}
