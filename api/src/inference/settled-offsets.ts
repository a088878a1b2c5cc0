// When a streamed token's text_offset is final, shared by the API's stream (stream.ts) and the runner's own
// (gpu-runner/src/serve/settled-deltas.ts), so that both send the offsets of the whole answer. The runner holds back
// text that may begin a stop string and gives a token inside it the offset it has if that text goes out; a stop
// string cuts it to the text's end. An offset within the text released is final; one past it waits.
import type { LogprobEntry } from "./runner-protocol.js";

type Offset = Pick<LogprobEntry, "text_offset">;

/**
 * Takes from the front of `held` (a stream's items in token order) those whose entry's text_offset is final once
 * `released` characters of the choice's text went out. An item without an entry, or an entry without text_offset
 * (older runners), is final as it comes; none passes one that waits.
 */
export function takeSettled<T>(held: T[], released: number, entryOf: (item: T) => Offset | undefined): T[] {
  let n = 0;
  while (n < held.length && (entryOf(held[n])?.text_offset ?? 0) <= released) n++;
  return held.splice(0, n);
}

/** An entry left when the choice ended with `length` characters: a token a stop string cut sits at the text's end, as the whole answer has it. */
export const capOffset = <E extends Offset>(e: E, length: number): E => (e.text_offset !== undefined && e.text_offset > length ? { ...e, text_offset: length } : e);

/** The entries left when the choice ended, each capped so. */
export const capOffsets = <E extends Offset>(entries: E[], length: number): E[] => entries.map((e) => capOffset(e, length));
