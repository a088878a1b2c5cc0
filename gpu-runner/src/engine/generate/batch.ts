// Left-padding a batch of token rows: ids, per-row RoPE positions and the padding mask.
// Left padding keeps every row's newest token in the same slot, so decode steps stay aligned.

export type PaddedBatch = {
  B: number;
  T: number;
  /** [B, T] ids (padding uses token 0; it is masked out). */
  ids: BigInt64Array;
  /** [B, T] positions: 0 at each row's first real token (padding gets 0). */
  positions: BigInt64Array;
  /** [B, T] 1 for real tokens, 0 for padding. */
  mask: Uint8Array;
  /** Padding slots at the start of each row. */
  pad: number[];
};

/** Left-pads `rows` (each non-empty) to the longest length. */
export function padLeft(rows: number[][]): PaddedBatch {
  if (rows.length === 0) throw new Error("batch: needs at least one row of tokens");
  rows.forEach((r, i) => {
    if (r.length === 0) throw new Error(`batch: row ${i} has no tokens; every row needs at least one`);
  });
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(B * T);
  const positions = new BigInt64Array(B * T);
  const mask = new Uint8Array(B * T);
  const pad = rows.map((r) => T - r.length);
  rows.forEach((r, b) => {
    r.forEach((tok, j) => {
      const t = pad[b] + j;
      ids[b * T + t] = BigInt(tok);
      positions[b * T + t] = BigInt(j);
      mask[b * T + t] = 1;
    });
  });
  return { B, T, ids, positions, mask, pad };
}
