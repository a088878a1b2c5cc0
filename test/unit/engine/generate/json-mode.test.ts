// JSON mode's mask: inside a free string, tokens known to be "string-safe" are let through without trying them;
// the mask must equal trying every token, in both grammars and a union, at every kind of position.
import { describe, expect, it } from "vitest";
import { JsonMode, stringSafeTokens, type JsonRecognizer } from "../../../../gpu-runner/src/engine/generate/json-mode.js";
import { JsonObjectRecognizer } from "../../../../gpu-runner/src/engine/generate/json-grammar.js";
import { schemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema.js";

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Every byte, pairs of bytes that matter to strings and UTF-8, and some text and character pieces. */
function vocabulary(): Uint8Array[] {
  const special = [0x09, 0x0a, 0x20, 0x22, 0x2c, 0x3a, 0x41, 0x5c, 0x6e, 0x7b, 0x7d, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff];
  const tokens: Uint8Array[] = Array.from({ length: 256 }, (_, b) => Uint8Array.of(b));
  for (const a of special) for (const b of special) tokens.push(Uint8Array.of(a, b));
  for (const text of ["hello", " world", "é", "日本", "\u{1F916}", 'a"', '"}', "\\n", "x\u0001", "ok\n"]) tokens.push(utf8(text));
  const robot = utf8("\u{1F916}");
  tokens.push(robot.subarray(0, 2), robot.subarray(1), robot.subarray(2), Uint8Array.of(0xe6, 0x97));
  return tokens;
}

const tokens = vocabulary();
const vocab = { tokenBytes: (t: number) => tokens[t], vocabSize: tokens.length, blocked: new Set<number>([3]) };

/** The mask as JsonMode computes it and as trying every usable token with accepts() gives it. */
function masks(json: JsonRecognizer): { fast: boolean[]; tried: boolean[] } {
  const logits = new Float32Array(tokens.length);
  new JsonMode(vocab, json).mask(logits);
  const tried = tokens.map((bytes, t) => !vocab.blocked.has(t) && bytes.length > 0 && json.accepts(bytes));
  return { fast: [...logits].map((l) => l !== -Infinity), tried };
}

describe("JsonMode.mask", () => {
  const schema = { type: "object", properties: { s: { type: "string" }, e: { enum: ["ab", "a b"] }, n: { type: "number" } }, required: ["s"] };
  const union = { anyOf: [{ type: "object", properties: { s: { type: "string" } } }, { type: "object", properties: { s: { enum: ["x"] } } }] };
  const call = (name: string) => ({ type: "object", properties: { name: { const: name }, on: { type: "boolean" } }, required: ["name"] });
  const named = { anyOf: [call("ab"), call("a b"), call("abc"), call("xy")] };
  const positions: [string, () => JsonRecognizer, string][] = [
    ["JSON mode, a key", () => new JsonObjectRecognizer(), '{"'],
    ["JSON mode, a value", () => new JsonObjectRecognizer(), '{"a":"x'],
    ["JSON mode, within a character", () => new JsonObjectRecognizer(), '{"a":"\xe6'],
    ["JSON mode, after an escape", () => new JsonObjectRecognizer(), '{"a":"\\'],
    ["JSON mode, between tokens", () => new JsonObjectRecognizer(), '{"a":1'],
    ["schema, a string value", () => schemaRecognizer(schema, "s"), '{"s":"'],
    ["schema, an enum value", () => schemaRecognizer(schema, "s"), '{"e":"a'],
    ["schema, a key", () => schemaRecognizer(schema, "s"), '{"'],
    ["union, one branch in a string", () => schemaRecognizer(union, "s"), '{"s":"'],
    ["union, in the const that tells branches apart", () => schemaRecognizer(named, "s"), '{"name":"'],
    ["union, after a const that ended", () => schemaRecognizer(named, "s"), '{"name":"ab"'],
  ];
  for (const [name, make, prefix] of positions) {
    it(`lets through exactly the tokens that continue the JSON: ${name}`, () => {
      const json = make();
      // Latin-1 escapes above stand for raw bytes.
      expect(json.push(Uint8Array.from(prefix, (c) => c.charCodeAt(0)))).toBe(true);
      const { fast, tried } = masks(json);
      expect(fast).toEqual(tried);
    });
  }

  it("knows string-safe tokens: no quote, backslash or control byte, and UTF-8 so far", () => {
    const safe = stringSafeTokens(vocab);
    const of = (bytes: number[]) => safe[tokens.findIndex((t) => t.length === bytes.length && t.every((b, i) => b === bytes[i]))];
    expect([of([0x41]), of([...utf8("é")]), of([0xe6, 0x97]), of([0x7f])]).toEqual([1, 1, 1, 1]);
    expect([of([0x22]), of([0x5c]), of([0x0a]), of([0x80]), of([0xc0, 0x80]), of([0xed, 0xa0])]).toEqual([0, 0, 0, 0, 0, 0]);
  });
});
