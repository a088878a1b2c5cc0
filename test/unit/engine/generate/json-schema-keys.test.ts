// Object keys under Structured Outputs: a key in progress is matched against the schema's names without
// scanning them all per byte, so a schema at the property limit cannot hold a masking step for seconds.
import { describe, expect, it } from "vitest";
import { feed, utf8 } from "./feed-schema.js";
import { compileSchema, MAX_SCHEMA_PROPERTIES } from "../../../../gpu-runner/src/engine/generate/json-schema-compile.js";
import { JsonSchemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema-recognizer.js";

const nested = {
  type: "object",
  properties: { a: { type: "integer" }, ab: { type: "integer" }, abc: { type: "integer" }, b: { type: "integer" }, "é": { type: "integer" } },
  required: [],
  additionalProperties: false,
};

describe("schema object keys", () => {
  it("takes each name once, whichever names share its prefix, and refuses a key no unused name starts with", () => {
    const all = '{"abc":1,"a":2,"ab":3,"é":4,"b":5}';
    expect(feed(nested, all)).toEqual({ taken: utf8(all).length, done: true });
    // "ab" and "abc" used: '"a' may still become "a"; '"ab' no longer leads anywhere.
    expect(feed(nested, '{"abc":1,"ab":2,"a":3}').done).toBe(true);
    expect(feed(nested, '{"abc":1,"ab":2,"ab').taken).toBe('{"abc":1,"ab":2,"ab'.length - 1);
    expect(feed(nested, '{"a":1,"a"').taken).toBe('{"a":1,"a'.length);
    expect(feed(nested, '{"ac"').taken).toBe('{"a'.length);
    // "é" used: no unused name starts with its first byte.
    expect(feed(nested, '{"é":1,"é"').taken).toBe(utf8('{"é":1,"').length);
    // Every name used: no further key may start.
    expect(feed(nested, '{"a":1,"ab":1,"abc":1,"b":1,"é":1,"').taken).toBe(utf8('{"a":1,"ab":1,"abc":1,"b":1,"é":1').length);
  });

  it("keeps a clone's keys apart from the original's", () => {
    const r = new JsonSchemaRecognizer(compileSchema(nested));
    r.push(utf8('{"a":1,'));
    const c = r.clone();
    expect(c.push(utf8('"ab":2,'))).toBe(true);
    expect(r.push(utf8('"ab":3,"abc":4}'))).toBe(true);
    expect(c.push(utf8('"ab"'))).toBe(false);
  });

  it("tries a token in a key of a schema at the property limit in microseconds, not a scan of every name", () => {
    const properties: Record<string, unknown> = {};
    for (let i = 0; i < MAX_SCHEMA_PROPERTIES; i++) properties[`p${String(i).padStart(5, "0")}`] = { type: "string" };
    const r = new JsonSchemaRecognizer(compileSchema({ type: "object", properties, required: [], additionalProperties: false }));
    expect(r.push(utf8('{"p00000":"x","p0'))).toBe(true);
    const tokens = Array.from({ length: 20_000 }, (_, i) => utf8(`${i % 10}${i % 7}`));
    const start = performance.now();
    let taken = 0;
    for (const t of tokens) if (r.accepts(t)) taken++;
    // A scan of the 5000 names per byte took ~0.5 ms a token (10 s here); a vocabulary is 30k–150k tokens.
    expect(performance.now() - start).toBeLessThan(2000);
    // p0 goes on with 0–4 (p00000–p04999).
    expect(taken).toBe(10_000);
  });
});
