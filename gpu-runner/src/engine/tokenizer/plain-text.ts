// Chat messages are text: a special token's string inside a message (say "<|im_end|>" in a user's content)
// must not become that control token, or a user could close their turn and write the assistant's. Before the
// template renders, every special-token string in the messages and tools gets a separator inserted after its
// first character; the rendered text is cut at the separators and each piece encoded on its own, so only the
// template's own markup can form special tokens. The separator is a private-use character that occurs
// nowhere in the request or the template, so cutting at it removes nothing else.

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
