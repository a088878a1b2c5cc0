// The JSON-object recognizer against JSON.parse: every prefix of a valid object is accepted and only the
// whole object is done; invalid texts are refused at the first byte that breaks them; accepts() leaves the
// state untouched.
import { describe, expect, it } from "vitest";
import { JsonObjectRecognizer } from "../../../../gpu-runner/src/engine/generate/json-grammar.js";
import { MAX_INDENT, MAX_LEADING, MAX_NEWLINES } from "../../../../gpu-runner/src/engine/generate/json-limits.js";

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Feeds `text` byte by byte; returns how many bytes were taken before one was refused, and whether it is done. */
function feed(text: string): { taken: number; done: boolean } {
  const r = new JsonObjectRecognizer();
  const bytes = utf8(text);
  for (let i = 0; i < bytes.length; i++) if (!r.push(bytes.subarray(i, i + 1))) return { taken: i, done: false };
  return { taken: bytes.length, done: r.done };
}

const VALID = [
  "{}",
  '{ "a" : 1 }',
  '{"a":[1,-2.5e+3,0,0.25,1E9,-0],"b":{"c":null,"d":true,"e":false},"f":[]}',
  '{"s":"quote \\" backslash \\\\ slash \\/ \\b\\f\\n\\r\\t \\u00e9\\uD83D\\uDE00"}',
  '{"utf8":"é€😀","nested":[[[{"x":[{}]}]]]}',
  '{\n\t"k": [ 1 , 2 ]\r\n}',
];

const INVALID: [string, number][] = [
  // [text, bytes taken before the refusal]
  ['{"a" 1}', 5],
  ['{"a":01}', 6],
  ['{"a":1,}', 7],
  ['{"a":[1,]}', 8],
  ['{"a":tru}', 8],
  ['{"a":"\\x"}', 7],
  ['{"a":"\\u12G4"}', 10],
  ['{"a":"tab\there"}', 9],
  ['{"a":1.}', 7],
  ['{"a":-}', 6],
  ['{"a":1e}', 7],
  ['{"a":1]', 6],
  ["{} x", 2], // nothing after the object
  ["{'a':1}", 1],
];

describe("JsonObjectRecognizer", () => {
  it("takes every valid object whole, and is done only at its end", () => {
    for (const text of VALID) {
      expect(() => JSON.parse(text), text).not.toThrow();
      expect(feed(text), text).toEqual({ taken: utf8(text).length, done: true });
      expect(feed(text.slice(0, -1)).done, text).toBe(false);
    }
  });

  it("refuses invalid JSON at the first byte that breaks it", () => {
    for (const [text, at] of INVALID) {
      expect(() => JSON.parse(text), text).toThrow();
      expect(feed(text).taken, text).toBe(at);
    }
  });

  it("takes only an object at the top level", () => {
    for (const text of ["[1]", '"s"', "1", "null"]) expect(feed(text).taken, text).toBe(0);
    // A little whitespace may come before it (SentencePiece's "▁{"), but nothing after it.
    expect(feed(`${" ".repeat(MAX_LEADING)}{"a":1}`).done).toBe(true);
    expect(feed(`${" ".repeat(MAX_LEADING + 1)}{"a":1}`).taken).toBe(MAX_LEADING);
    expect(feed("{} ").taken).toBe(2);
  });

  it("bounds whitespace between tokens (newlines in a row, indent after each), not inside strings", () => {
    // Pretty-printed, 4 spaces an indent, 14 levels deep (an object and an array per step).
    const deep = (n: number): unknown => (n === 0 ? 1 : { k: [deep(n - 1)] });
    expect(feed(JSON.stringify(deep(7), null, 4)).done).toBe(true);
    const spaces = (n: number) => " ".repeat(n);
    expect(feed(`{${spaces(MAX_INDENT)}"a":1}`).done).toBe(true);
    expect(feed(`{${spaces(MAX_INDENT + 1)}"a":1}`).taken).toBe(1 + MAX_INDENT);
    const lines = "\n".repeat(MAX_NEWLINES);
    expect(feed(`{${lines}"a":1}`).done).toBe(true);
    expect(feed(`{${lines}\n"a":1}`).taken).toBe(1 + MAX_NEWLINES);
    // Spaces and newlines in turn still end: each newline run counts until a JSON token.
    expect(feed(`{${(spaces(10) + "\n").repeat(5)}"a":1}`).taken).toBe(1 + 2 * 11 + 10);
    expect(feed(`{"a":"${spaces(1000)}"}`).done).toBe(true);
  });

  it("takes only numbers that parse to what they say (never Infinity, exact integers)", () => {
    expect(feed('{"a":123456789012345,"b":1.2345678901234567,"c":-9e99}').done).toBe(true);
    expect(feed('{"a":1234567890123456}').taken).toBe('{"a":123456789012345'.length);
    expect(feed('{"a":1e100}').taken).toBe('{"a":1e10'.length);
  });

  it("refuses malformed UTF-8 inside strings", () => {
    const r = new JsonObjectRecognizer();
    expect(r.push(utf8('{"a":"'))).toBe(true);
    expect(r.accepts(Uint8Array.of(0xe2, 0x82, 0xac))).toBe(true); // €
    expect(r.accepts(Uint8Array.of(0xe2, 0x41))).toBe(false); // a lead byte, then no continuation
    expect(r.accepts(Uint8Array.of(0x80))).toBe(false); // a continuation without a lead
    expect(r.accepts(Uint8Array.of(0xc0))).toBe(false); // never valid
    expect(r.accepts(Uint8Array.of(0xe0, 0x80, 0x80))).toBe(false); // overlong
    expect(r.accepts(Uint8Array.of(0xed, 0xa0, 0x80))).toBe(false); // a surrogate
    expect(r.accepts(Uint8Array.of(0xf4, 0x90, 0x80, 0x80))).toBe(false); // past U+10FFFF
    expect(r.accepts(Uint8Array.of(0xf0, 0x9f, 0x98, 0x80))).toBe(true); // 😀
  });

  it("leaves its state as it was after accepts(), also after trying brackets", () => {
    const r = new JsonObjectRecognizer();
    expect(r.push(utf8('{"a":[{"b":'))).toBe(true);
    expect(r.accepts(utf8("[[{}]]}]}"))).toBe(true);
    expect(r.accepts(utf8("1}]}"))).toBe(true);
    expect(r.accepts(utf8("1]"))).toBe(false);
    expect(r.accepts(utf8("}"))).toBe(false);
    // The real continuation still works as if nothing had been tried.
    expect(r.push(utf8("2}]}"))).toBe(true);
    expect(r.done).toBe(true);
  });

  it("leaves a number being read as it was after accepts()", () => {
    const r = new JsonObjectRecognizer();
    expect(r.push(utf8('{"a":12345678901234'))).toBe(true); // 14 of MAX_INT_DIGITS = 15
    expect(r.accepts(utf8("5"))).toBe(true);
    expect(r.accepts(utf8("e"))).toBe(true);
    expect(r.accepts(utf8("56"))).toBe(false);
    // Neither the digits nor the part tried above count: one more digit fits, then an exponent.
    expect(r.push(utf8("5e1}"))).toBe(true);
    expect(r.done).toBe(true);
  });
});
