// The bytes one token stands for, as OpenAI's logprobs report them (`bytes`, and `token` decoded from them):
// a token can be part of a UTF-8 character, so decoding it alone would lose bytes. Read off the vocabulary
// entry, by the tokenizer's own spelling of bytes: GPT-2's byte table (ByteLevel), <0xNN> pieces
// (SentencePiece byte fallback), ▁ for a space (Metaspace / SentencePiece); added tokens are their text.
import { byteToUnicode } from "./byte-level.js";

type Decoder = { type?: string; decoders?: Decoder[] } | null | undefined;
type TokenizerJson = { decoder?: Decoder; added_tokens?: { id: number; content: string }[] };

const utf8 = new TextEncoder();

/** The decoder types a tokenizer.json applies (a Sequence decoder lists several). */
function decoderTypes(d: Decoder): Set<string> {
  const out = new Set<string>();
  const walk = (x: Decoder) => {
    if (!x) return;
    if (x.type) out.add(x.type);
    x.decoders?.forEach(walk);
  };
  walk(d);
  return out;
}

/**
 * A function from token id to its bytes. `piece(id)` is the vocabulary entry (the tokenizer's id_to_token);
 * `decodeOne` is the fallback for a spelling this does not know (WordPiece and the like).
 */
export function tokenBytesReader(json: TokenizerJson, piece: (id: number) => string | undefined, decodeOne: (id: number) => string): (id: number) => Uint8Array {
  const types = decoderTypes(json.decoder);
  const added = new Map((json.added_tokens ?? []).map((t) => [t.id, t.content]));
  const fromTable = new Map(byteToUnicode().map((ch, b) => [ch, b]));
  const byteLevel = (p: string) => {
    const out: number[] = [];
    for (const ch of p) {
      const b = fromTable.get(ch);
      if (b === undefined) out.push(...utf8.encode(ch));
      else out.push(b);
    }
    return Uint8Array.from(out);
  };
  const cache = new Map<number, Uint8Array>();
  const read = (id: number): Uint8Array => {
    const special = added.get(id);
    if (special !== undefined) return utf8.encode(special);
    const p = piece(id);
    if (p === undefined) return utf8.encode(decodeOne(id));
    if (types.has("ByteLevel")) return byteLevel(p);
    const hex = types.has("ByteFallback") ? /^<0x([0-9A-Fa-f]{2})>$/.exec(p) : null;
    if (hex) return Uint8Array.of(parseInt(hex[1], 16));
    if (types.has("Metaspace") || types.has("Replace")) return utf8.encode(p.replaceAll("▁", " "));
    return utf8.encode(decodeOne(id));
  };
  return (id) => {
    let bytes = cache.get(id);
    if (!bytes) cache.set(id, (bytes = read(id)));
    return bytes;
  };
}
