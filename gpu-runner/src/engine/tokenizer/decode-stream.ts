// Token streams to text: incrementally, releasing each token's text as soon as it is whole (streaming, stop
// strings, logprobs' text offsets), and at once after a prompt (a completion's text).
import type { TextTokenizer } from "./tokenizer.js";

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** How many continuation bytes (10xxxxxx) byte `b` asks for when it starts a character; 0 for ASCII and for bytes that start none. */
function continuationsAfter(b: number): number {
  if (b >= 0xc2 && b <= 0xdf) return 1;
  if (b >= 0xe0 && b <= 0xef) return 2;
  if (b >= 0xf0 && b <= 0xf4) return 3;
  return 0;
}
const isContinuation = (b: number) => (b & 0xc0) === 0x80;

export type DecodeStream = {
  /** Adds token `id`; returns the text that became whole with it (none while a character is unfinished). */
  push(id: number): string;
  /** Releases whatever is still held (an unfinished character decodes as U+FFFD). */
  flush(): string;
  /** Where the text of the token pushed last starts in the released text (a character's bytes: at its start). */
  readonly lastOffset: number;
  /** Where a token that writes nothing (a hidden one) would sit now: inside an unfinished character, at its start. */
  readonly nextOffset: number;
};

/**
 * Incremental detokenizer for streaming: `push(id)` returns only the text that became complete with this
 * token. Decodes a small window (the previous tokens plus the new ones) and compares, because a token's
 * text depends on its neighbours (SentencePiece's leading space) and byte-level BPE tokens can end in the
 * middle of a UTF-8 character, which is held back until it completes. With `tokenBytes`, that is read from the
 * bytes, so a U+FFFD the model wrote, or bytes that can form no character, go out at once; without, a window
 * whose text ends in U+FFFD is held. `context`: tokens the text goes on from (a prompt's last ones), which
 * decode as the first window's start.
 */
export function createDecodeStream(
  tok: Pick<TextTokenizer, "decode"> & Partial<Pick<TextTokenizer, "tokenBytes">>,
  opts?: { skipSpecialTokens?: boolean; context?: number[] },
): DecodeStream {
  // The context's text is never released; it only puts the first tokens in their place (see decodeAfter).
  const ids: number[] = [...(opts?.context ?? [])];
  let prefixOffset = 0; // start of the context window
  let readOffset = ids.length; // tokens before this have been released
  const decode = (from: number, to: number) => tok.decode(ids.slice(from, to), opts);
  /** Length of the text released so far. */
  let released = 0;
  /** Continuation bytes the unfinished character still needs (0: none unfinished), and where it starts. */
  let need = 0;
  let pendingAt = 0;
  let last = 0;

  /** Places the token just pushed (its bytes) in the text and moves the character state past it. */
  const place = (bytes: Uint8Array): void => {
    const continues = need > 0 && bytes.length > 0 && isContinuation(bytes[0]);
    // Bytes before it that can no longer complete a character are final: U+FFFD where the decoder puts it.
    if (continues) last = pendingAt;
    else last = need > 0 ? released + decode(prefixOffset, ids.length - 1).length - decode(prefixOffset, readOffset).length : released;
    let lead = -1;
    for (let i = 0; i < bytes.length; i++) {
      if (need > 0 && isContinuation(bytes[i])) need--;
      else if ((need = continuationsAfter(bytes[i])) > 0) lead = i;
    }
    if (need > 0 && lead >= 0) pendingAt = last + utf8.decode(bytes.subarray(0, lead)).length;
  };

  return {
    push(id: number): string {
      ids.push(id);
      const bytes = tok.tokenBytes?.(id);
      if (bytes) place(bytes);
      else last = released;
      const prefix = decode(prefixOffset, readOffset);
      const full = decode(prefixOffset, ids.length);
      const unfinished = bytes ? need > 0 : full.endsWith("\uFFFD");
      if (full.length > prefix.length && !unfinished) {
        prefixOffset = readOffset;
        readOffset = ids.length;
        const piece = full.slice(prefix.length);
        released += piece.length;
        return piece;
      }
      return "";
    },
    flush(): string {
      const prefix = decode(prefixOffset, readOffset);
      const full = decode(prefixOffset, ids.length);
      prefixOffset = readOffset = ids.length;
      need = 0;
      const piece = full.length > prefix.length ? full.slice(prefix.length) : "";
      released += piece.length;
      return piece;
    },
    get lastOffset() {
      return last;
    },
    get nextOffset() {
      return need > 0 ? pendingAt : released + decode(prefixOffset, ids.length).length - decode(prefixOffset, readOffset).length;
    },
  };
}

/** Prompt tokens a completion's text is decoded after (decodeAfter): enough for a word and a split character. */
export const CONTEXT_TOKENS = 4;

/**
 * The text `ids` add after `context` (the prompt's last tokens). Decoded alone, a completion's first token
 * loses its SentencePiece space ("▁Paris" → "Paris", the decoder strips a text's first space), and the
 * prompt "The capital is" would be continued as "Paris" where the model wrote " Paris".
 */
export function decodeAfter(tok: Pick<TextTokenizer, "decode">, context: number[], ids: number[], opts?: { skipSpecialTokens?: boolean }): string {
  if (context.length === 0) return tok.decode(ids, opts);
  const before = tok.decode(context, opts);
  const all = tok.decode([...context, ...ids], opts);
  return all.startsWith(before) ? all.slice(before.length) : tok.decode(ids, opts);
}
