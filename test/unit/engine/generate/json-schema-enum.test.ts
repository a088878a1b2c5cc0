// Structured Outputs' enums: the recognizer takes exactly the bytes of one member (then spaces and the object's
// end), checked against the plain definition on many enums (members prefixes of one another, non-ASCII, spaces,
// numbers), and a byte narrows the members by binary search instead of reading each of them.
import { describe, expect, it } from "vitest";
import { compileSchema, type SchemaNode } from "../../../../gpu-runner/src/engine/generate/json-schema-compile.js";
import { JsonSchemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema-recognizer.js";
import { MAX_INDENT } from "../../../../gpu-runner/src/engine/generate/json-limits.js";
import { utf8 } from "./feed-schema.js";

const schemaOf = (values: unknown[]) => ({ type: "object", properties: { v: { enum: values } }, required: ["v"], additionalProperties: false });

/** A recognizer that has read `{"v":`, so the enum's value comes next. */
function atValue(values: unknown[]): JsonSchemaRecognizer {
  const r = new JsonSchemaRecognizer(compileSchema(schemaOf(values)));
  if (!r.push(utf8('{"v":'))) throw new Error("the opening does not parse");
  return r;
}

const startsWith = (whole: Uint8Array, part: Uint8Array) => part.length <= whole.length && part.every((b, i) => whole[i] === b);

/** The plain definition: `bytes` begin `t + spaces + "}"` for a member t (at most MAX_INDENT spaces); done when they are all of it. */
function expected(texts: Uint8Array[], bytes: Uint8Array): { accepts: boolean; done: boolean } {
  let accepts = false;
  let done = false;
  for (const t of texts) {
    if (bytes.length <= t.length) {
      accepts ||= startsWith(t, bytes);
      continue;
    }
    if (!startsWith(bytes, t)) continue;
    const rest = new TextDecoder().decode(bytes.subarray(t.length));
    const after = new RegExp(`^ {0,${MAX_INDENT}}(\\})?$`).exec(rest);
    if (!after) continue;
    accepts = true;
    done ||= after[1] !== undefined;
  }
  return { accepts, done };
}

/** A small seeded generator (the enums are random, the test is not). */
function random(seed: number) {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  return { int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)] };
}

/** An enum of strings (many prefixes of one another, non-ASCII, spaces, quotes and escapes) and numbers, booleans and null. */
function randomEnum(rnd: ReturnType<typeof random>): unknown[] {
  const pieces = ["a", "ab", "b", "é", "日本", "😀", " ", '"', "\\", "\n", "ü"];
  const values: unknown[] = [];
  const n = 1 + rnd.int(12);
  while (values.length < n) {
    const kind = rnd.int(10);
    if (kind < 6) {
      // Often a member plus a piece: prefixes of one another.
      const base = values.length && rnd.int(2) ? values[rnd.int(values.length)] : "";
      values.push((typeof base === "string" ? base : "") + Array.from({ length: rnd.int(3) }, () => rnd.pick(pieces)).join(""));
    } else if (kind < 8) values.push(rnd.pick([1, 12, 123, -1, -12, 1.5, 10, 0, 1e21]));
    else values.push(rnd.pick([true, false, null]));
  }
  return values;
}

/** Byte strings to try after `{"v":`: every prefix of each answer, and each such prefix with one more byte of any kind seen. */
function candidates(texts: Uint8Array[]): Uint8Array[] {
  const alphabet = [...new Set([...texts.flatMap((t) => [...t]), ...utf8(' }],"0a')])];
  const out: Uint8Array[] = [];
  for (const t of texts) {
    const whole = new Uint8Array([...t, ...utf8(" }")]);
    for (let len = 1; len <= whole.length; len++) {
      const p = whole.subarray(0, len);
      out.push(p);
      for (const b of alphabet) out.push(new Uint8Array([...p, b]));
    }
    out.push(new Uint8Array([...t, ...t]));
  }
  return out;
}

describe("Structured Outputs enums", () => {
  it("takes exactly one member's bytes, on many enums with members that are prefixes of one another and non-ASCII", () => {
    const rnd = random(7);
    const wrong: unknown[] = [];
    let tried = 0;
    for (let e = 0; e < 60; e++) {
      const values = randomEnum(rnd);
      const texts = values.map((v) => utf8(JSON.stringify(v)));
      const start = atValue(values);
      for (const bytes of candidates(texts)) {
        const want = expected(texts, bytes);
        const r = start.clone();
        // Fed a byte at a time too, as masking's accepts() does token after token.
        const byByte = start.clone();
        const got = { accepts: r.push(bytes), done: r.done, byByte: bytes.every((b) => byByte.push(Uint8Array.of(b))) };
        if (got.accepts !== want.accepts || got.byByte !== want.accepts || (want.accepts && got.done !== want.done)) wrong.push({ values, bytes: new TextDecoder().decode(bytes), want, got });
        tried++;
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(tried).toBeGreaterThan(10_000);
  });

  it("tells a union apart by its couldTake test only where the value cannot take the byte", () => {
    const rnd = random(11);
    for (let e = 0; e < 10; e++) {
      const values = randomEnum(rnd);
      const texts = values.map((v) => utf8(JSON.stringify(v)));
      for (const t of texts) {
        for (let len = 1; len <= t.length; len++) {
          const r = atValue(values);
          r.push(t.subarray(0, len));
          for (let b = 0; b < 256; b++) if (!r.couldTake(b)) expect(r.accepts(Uint8Array.of(b))).toBe(false);
        }
      }
    }
  });

  it("reads a few members per byte (a binary search), not every member", () => {
    const values = Array.from({ length: 1000 }, (_, i) => `value_${String(i).padStart(4, "0")}_é`);
    const node = compileSchema(schemaOf(values)) as Extract<SchemaNode, { kind: "object" }>;
    const literals = node.props.get("v") as Extract<SchemaNode, { kind: "literals" }>;
    let reads = 0;
    const bytes = literals.texts.bytes;
    literals.texts.bytes = new Proxy(bytes, {
      get(target, key, receiver) {
        if (typeof key === "string" && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver);
      },
    });
    const r = new JsonSchemaRecognizer(node);
    const answer = utf8(`{"v":${JSON.stringify(values[637])}}`);
    for (const b of answer) expect(r.push(Uint8Array.of(b))).toBe(true);
    expect(r.done).toBe(true);
    // Two binary searches of ~10 steps per byte of the value (its length ~16), against 1000 members a byte.
    expect(reads).toBeLessThan(answer.length * 40);
  });
});
