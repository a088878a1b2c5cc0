// How the runner splits a job's optimizer step into micro-batches. One session run holds its rows'
// activations and attention scores at once, and the scores grow with the square of the sequence length: a
// job's batch_size × seq_len could otherwise ask one run for more memory than the machine has, and take down
// the process that also serves inference. The trainer sums the micro-batches' gradients over one
// denominator, so a split step is the same step. The split depends on the job alone, so every runner makes
// the same one (and a checkpoint's fingerprint matches on any of them).

/** Sequences × seq_len² one run may hold: two sequences of 2048 tokens, 32 of the default 512. */
export const RUN_ATTENTION_BUDGET = 2 * 2048 * 2048;

/**
 * Rows per micro-batch and micro-batches per step for `batchSize` rows of up to `seqLen` tokens (a DPO row is
 * a pair: two sequences). Rows per run divide the batch evenly; one row per run is the least.
 */
export function stepSplit(batchSize: number, seqLen: number, sequencesPerRow: 1 | 2): { batchSize: number; gradAccum: number } {
  const fits = Math.max(1, Math.floor(RUN_ATTENTION_BUDGET / (sequencesPerRow * seqLen * seqLen)));
  let rows = Math.min(batchSize, fits);
  while (batchSize % rows !== 0) rows--;
  return { batchSize: rows, gradAccum: batchSize / rows };
}
