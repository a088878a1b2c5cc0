// Full-sequence logits for a batch of token rows (padding removed from the result): the `engine
// logits` command and the fixture tests use it; it is one prefill on an "all"-logits session.
import { padLeft } from "../generate/batch.js";
import type { DecoderSession } from "./decoder-session.js";
import type { LoraFeedSource } from "../lora/slots.js";

/** logits[b][p][v] for every real position of every row. */
export async function computeLogits(
  session: DecoderSession,
  rows: number[][],
  o: { adapterIndex?: number[]; loraFeeds?: LoraFeedSource } = {},
): Promise<Float32Array[][]> {
  if (session.logitsMode !== "all") throw new Error("computeLogits: the session must be built with logits: \"all\"");
  const batch = padLeft(rows);
  const cache = session.newCache(batch.B, batch.T);
  const feeds = o.loraFeeds?.(o.adapterIndex ?? rows.map(() => 0)) ?? {};
  const logits = await session.step(cache, { ids: batch.ids, positions: batch.positions, mask: batch.mask, T: batch.T }, feeds);
  const V = session.cfg.vocab;
  return rows.map((r, b) =>
    r.map((_, j) => {
      const t = batch.pad[b] + j;
      return Float32Array.from(logits.subarray((b * batch.T + t) * V, (b * batch.T + t + 1) * V));
    }),
  );
}
