// Chat messages are text: a special token's string inside a message (say "<|im_end|>" in a user's content)
// must not become that control token, or a user could close their turn and write the assistant's. Before the
// template renders, every special-token string in the messages and tools gets a separator inserted after its
// first character; the rendered text is cut at the separators and each piece encoded on its own, so only the
// template's own markup can form special tokens. The separator is a private-use character that occurs
// nowhere in the request or the template, so cutting at it removes nothing else. A piece after a cut continues
// the text before it, so it is encoded without SentencePiece's leading "▁" (withoutPrefixSpace).

/** A private-use character absent from every one of `texts`. */
export function absentCharacter(texts: string[]): string {
  for (let code = 0xe000; code <= 0xf8ff; code++) {
    const c = String.fromCharCode(code);
    if (!texts.some((t) => t.includes(c))) return c;
  }
  throw new Error("every private-use character occurs in the chat request; cannot tell its text from the template's markup");
}

/**
 * Every string inside `value` mapped by `f`, object keys included (a template may print them: a tool's
 * parameter names, a call's argument names); other values as they are.
 */
export function mapStrings<T>(value: T, f: (s: string) => string): T {
  if (typeof value === "string") return f(value) as T;
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, f)) as T;
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [f(k), mapStrings(v, f)])) as T;
  return value;
}

/** All strings inside `value`, object keys included. */
export function stringsOf(value: unknown, out: string[] = []): string[] {
  mapStrings(value, (s) => (out.push(s), s));
  return out;
}

/** `text` with `separator` after the first character of each occurrence of each of `specials`. */
export function defuse(text: string, specials: readonly string[], separator: string): string {
  let out = text;
  for (const s of specials) if (out.includes(s)) out = out.split(s).join(s[0] + separator + s.slice(1));
  return out;
}

type Json = Record<string, unknown>;

/**
 * tokenizer.json without what puts a space before the text it encodes (SentencePiece's Prepend "▁"
 * normalizer, Metaspace's prepend_scheme, ByteLevel's add_prefix_space), for encoding a piece that continues
 * text cut before it; null when nothing does (byte-level BPE as Llama 3 and Qwen2 have it).
 */
export function withoutPrefixSpace(tokenizerJson: unknown): Json | null {
  let changed = false;
  const strip = (step: unknown): unknown => {
    if (step === null || typeof step !== "object") return step;
    const s = step as Json;
    if (s.type === "Sequence") {
      const key = Array.isArray(s.normalizers) ? "normalizers" : "pretokenizers";
      const steps = (s[key] as unknown[] | undefined)?.filter((x) => !((x as Json | null)?.type === "Prepend" && (changed = true))).map(strip);
      return steps ? { ...s, [key]: steps } : s;
    }
    // The library reads Metaspace's prepend_scheme only ("always" when absent).
    const prefixes = (s.type === "Metaspace" && (s.prepend_scheme ?? "always") !== "never") || (s.type === "ByteLevel" && s.add_prefix_space === true);
    if (!prefixes) return s;
    changed = true;
    return s.type === "Metaspace" ? { ...s, prepend_scheme: "never" } : { ...s, add_prefix_space: false };
  };
  const j = tokenizerJson as Json;
  const normalizer = (j.normalizer as Json | null)?.type === "Prepend" ? ((changed = true), null) : strip(j.normalizer ?? null);
  const out = { ...j, normalizer, pre_tokenizer: strip(j.pre_tokenizer ?? null) };
  return changed ? out : null;
}
