// Structured Outputs' recognizer: texts that follow the schema are taken whole (and parse), texts that break
// it are refused at the first byte that does; the compiler names what it cannot enforce.
import { describe, expect, it } from "vitest";
import { feed, utf8 } from "./feed-schema.js";
import { compileSchema } from "../../../../gpu-runner/src/engine/generate/json-schema-compile.js";
import { schemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema.js";
import { JsonSchemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema-recognizer.js";

const person = {
  type: "object",
  properties: {
    name: { type: "string", description: "ignored" },
    age: { type: "integer" },
    height: { type: "number" },
    tags: { type: "array", items: { type: "string" }, maxItems: 2 },
    role: { enum: ["admin", "user", 7, null] },
    nick: { type: ["string", "null"] },
    address: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
    ok: { type: "boolean" },
  },
  required: ["name", "age"],
  additionalProperties: false,
};

describe("JsonSchemaRecognizer", () => {
  it("takes objects that follow the schema, whole, in any key order", () => {
    for (const text of [
      '{"name":"Ada","age":36}',
      '{"age":-1,"name":"x","height":1.5e3,"tags":["a","b"],"role":"user","nick":null,"address":{"city":"Zürich"},"ok":false}',
      '{\n  "name": "A",\n  "age": 0,\n  "role": 7\n}',
      '{"name":"esc \\" \\u00e9","age":1,"nick":"n","role":null,"tags":[]}',
    ]) {
      expect(feed(person, text), text).toEqual({ taken: utf8(text).length, done: true });
      expect(typeof JSON.parse(text)).toBe("object");
    }
  });

  it("refuses the first byte that breaks the schema", () => {
    const cases: [string, string][] = [
      ['{"name":"A","age":1,"color":1}', '{"name":"A","age":1,"'], // a key the schema does not list
      ['{"name":"A","name":"B"}', '{"name":"A","n'], // a key twice ("n" could still start "nick")
      ['{"name":"A"}', '{"name":"A"'], // "age" is required: } refused
      ['{"age":1.5}', '{"age":1'], // an integer
      ['{"age":"1"}', '{"age":'], // not a string
      ['{"name":"A","age":1,"tags":["a","b","c"]}', '{"name":"A","age":1,"tags":["a","b"'], // maxItems 2
      ['{"name":"A","age":1,"role":"root"}', '{"name":"A","age":1,"role":"'], // not in the enum
      ['{"name":"A","age":1,"role":77}', '{"name":"A","age":1,"role":7'], // 7, then a 7 the enum does not continue
      ['{"name":"A","age":1,"address":{}}', '{"name":"A","age":1,"address":{'], // city is required
      ['{"name":"A","age":1,"ok":tru}', '{"name":"A","age":1,"ok":tru'],
      ['["a"]', ""], // the top level is an object
    ];
    for (const [text, prefix] of cases) expect(feed(person, text).taken, text).toBe(utf8(prefix).length);
  });

  it("closes an object once no key is left and every required one is there", () => {
    const one = { type: "object", properties: { a: { const: 1 } }, required: ["a"], additionalProperties: false };
    expect(feed(one, '{"a":1}').done).toBe(true);
    expect(feed(one, '{"a":1,').taken).toBe(6); // no key left for a comma
    expect(feed(one, "{}").taken).toBe(1);
  });

  it("tries bytes on a copy: accepts() leaves the state as it was", () => {
    const r = new JsonSchemaRecognizer(compileSchema(person));
    expect(r.push(utf8('{"name":"A","tags":['))).toBe(true);
    expect(r.accepts(utf8('"x"],"age":2}'))).toBe(true);
    expect(r.accepts(utf8("1]"))).toBe(false);
    expect(r.push(utf8('],"age":3}'))).toBe(true);
    expect(r.done).toBe(true);
  });

  it("names what it cannot enforce", () => {
    const refuse = (schema: unknown, path: RegExp) => expect(() => compileSchema(schema)).toThrow(path);
    refuse({ type: "object", properties: { s: { type: "string", pattern: "^a" } } }, /schema\.properties\.s\.pattern: this keyword is not supported/);
    refuse({ type: "object", additionalProperties: true }, /additionalProperties: only false/);
    refuse({ $ref: "#/$defs/x" }, /schema\.\$ref/);
    refuse({ anyOf: [{ type: "string" }, { enum: ["a"] }] }, /two branches can start with/);
    refuse({ type: "array" }, /items/);
    refuse({ type: "object", properties: { a: { type: "string" } }, required: ["b"] }, /required/);
    expect(() => new JsonSchemaRecognizer(compileSchema({ type: "string" }))).toThrow(/top level must be an object/);
    refuse({ type: "object", properties: { n: { type: [] } } }, /properties\.n\.type: an empty list allows no value/);
    refuse({ type: "object", properties: { n: { type: "integer", anyOf: [{ type: "string" }] } } }, /properties\.n\.type: keywords beside anyOf/);
    refuse({ type: "object", properties: { n: { type: "integer", enum: ["a", 1.5] } } }, /none of its values is of type/);
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 5000; i++) deep = { type: "array", items: deep };
    refuse({ type: "object", properties: { d: deep } }, /^schema(\.properties\.d)(\.items){31}: schemas nested deeper than 32 levels/);
  });

  it("bounds a schema's size: top-level alternatives, object properties and enum values", () => {
    const obj = (i: number) => ({ type: "object", properties: { [`k${i}`]: { type: "string" } }, required: [`k${i}`], additionalProperties: false });
    expect(() => schemaRecognizer({ anyOf: Array.from({ length: 128 }, (_, i) => obj(i)) }, "schema")).not.toThrow();
    expect(() => schemaRecognizer({ anyOf: Array.from({ length: 129 }, (_, i) => obj(i)) }, "schema")).toThrow(/^schema: 129 alternatives at the top level .* over the 128/);
    const wide = { type: "object", properties: Object.fromEntries(Array.from({ length: 5001 }, (_, i) => [`p${i}`, { type: "string" }])) };
    expect(() => schemaRecognizer(wide, "schema")).toThrow(/5001 object properties in all, over the 5000/);
    const values = { type: "object", properties: { a: { enum: Array.from({ length: 600 }, (_, i) => i) }, b: { enum: Array.from({ length: 401 }, (_, i) => i) } } };
    expect(() => schemaRecognizer(values, "schema")).toThrow(/1001 enum values in all, over the 1000/);
  });

  it("reads spaces inside enum and const strings as part of them", () => {
    const schema = { type: "object", properties: { status: { enum: ["in progress", "done"] }, c: { const: "a b" } }, required: ["status"], additionalProperties: false };
    expect(feed(schema, '{"status":"in progress","c":"a b"}').done).toBe(true);
    expect(feed(schema, '{"status": "done" , "c" : "a b" }').done).toBe(true);
  });

  it("writes only numbers that parse to what they say: 15 integer digits, 17 in all, 2 in the exponent", () => {
    const schema = { type: "object", properties: { x: { type: "number" } }, required: ["x"], additionalProperties: false };
    expect(feed(schema, '{"x":123456789012345.67}').done).toBe(true);
    expect(feed(schema, '{"x":-1.5e-99}').done).toBe(true);
    expect(feed(schema, '{"x":1234567890123456}').taken).toBe('{"x":123456789012345'.length);
    expect(feed(schema, '{"x":0.12345678901234567}').taken).toBe('{"x":0.1234567890123456'.length);
    expect(feed(schema, '{"x":1e100}').taken).toBe('{"x":1e10'.length);
  });

  it("takes an integer's bounds that bound nothing (as zod sends them), and a number or integer union", () => {
    const safe = { type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 };
    const schema = { type: "object", properties: { id: safe, v: { type: ["integer", "number"] }, w: { anyOf: [{ type: "integer" }, { type: "number" }] } }, required: ["id"], additionalProperties: false };
    expect(feed(schema, '{"id":42,"v":1.5,"w":2.5}').done).toBe(true);
    expect(() => compileSchema({ type: "object", properties: { n: { type: "integer", minimum: 0 } } })).toThrow(/properties\.n\.minimum: bounds are not supported/);
    expect(() => compileSchema({ type: "object", properties: { n: { type: "number", maximum: 1e300 } } })).toThrow(/maximum/);
  });

  it("keeps only the enum values of the type beside it", () => {
    const schema = { type: "object", properties: { n: { type: "string", enum: ["a", 1] } }, required: ["n"], additionalProperties: false };
    expect(feed(schema, '{"n":"a"}').done).toBe(true);
    expect(feed(schema, '{"n":1}').taken).toBe(5);
  });
});

describe("schemaRecognizer: a top-level anyOf of objects (a call among several tools)", () => {
  const call = (name: string, args: unknown) => ({
    type: "object",
    properties: { name: { const: name }, arguments: args },
    required: ["name", "arguments"],
    additionalProperties: false,
  });
  const weather = call("get_weather", { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false });
  const add = call("add", { type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } }, required: ["a", "b"], additionalProperties: false });
  const union = { anyOf: [weather, add] };
  const feedRoot = (text: string) => {
    const r = schemaRecognizer(union, "schema");
    const bytes = utf8(text);
    for (let i = 0; i < bytes.length; i++) if (!r.push(bytes.subarray(i, i + 1))) return { taken: i, done: false };
    return { taken: bytes.length, done: r.done };
  };

  it("takes a text that follows any one branch, whichever key comes first", () => {
    for (const text of ['{"name":"get_weather","arguments":{"city":"Oslo"}}', '{"arguments":{"a":1,"b":2},"name":"add"}', '{ "name": "add", "arguments": { "b": 2, "a": -3 } }']) {
      expect(feedRoot(text), text).toEqual({ taken: utf8(text).length, done: true });
    }
  });

  it("refuses the first byte that fits no branch, and an object that mixes two", () => {
    expect(feedRoot('{"name":"get_time"').taken).toBe('{"name":"get_'.length);
    expect(feedRoot('{"name":"add","arguments":{"city"').taken).toBe('{"name":"add","arguments":{"'.length);
    expect(feedRoot('{"arguments":{"a":1,"b":2},"name":"get_weather"').taken).toBe('{"arguments":{"a":1,"b":2},"name":"'.length);
    const whole = '{"name":"add","arguments":{"a":1,"b":2}}';
    expect(feedRoot(whole)).toEqual({ taken: whole.length, done: true });
  });

  it("accepts() leaves every branch as it was", () => {
    const r = schemaRecognizer(union, "schema");
    expect(r.push(utf8('{"name":"'))).toBe(true);
    expect(r.accepts(utf8('add"'))).toBe(true);
    expect(r.accepts(utf8('get_weather"'))).toBe(true);
    expect(r.push(utf8('add","arguments":{"a":1,"b":2}}'))).toBe(true);
    expect(r.done).toBe(true);
  });

  it("keeps a single schema's rules: the top level is an object, and errors name their path", () => {
    expect(() => schemaRecognizer({ type: "string" }, "tools.0.function.parameters")).toThrow(/^tools\.0\.function\.parameters: the top level must be an object/);
    expect(() => schemaRecognizer({ anyOf: [weather, { type: "string" }] }, "schema")).toThrow(/schema\.anyOf\.1: the top level must be an object/);
    expect(() => schemaRecognizer({ anyOf: [weather, { type: "object", properties: { x: { pattern: "a" } } }] }, "schema")).toThrow(/schema\.anyOf\.1\.properties\.x\.pattern: this keyword is not supported/);
  });
});

describe("compact spacing (a tool call's)", () => {
  const schema = { type: "object", properties: { a: { type: "integer" }, b: { type: "array", items: { type: "string" } } } };
  const taken = (text: string) => {
    const r = schemaRecognizer(schema, "p", { compact: true });
    const bytes = utf8(text);
    for (let i = 0; i < bytes.length; i++) if (!r.push(bytes.subarray(i, i + 1))) return i;
    return bytes.length;
  };

  it("takes at most one space between JSON tokens, and no other whitespace", () => {
    for (const ok of ['{"a": 1, "b": ["x y", "z"]}', '{"a":1}', ' {"a": 1 }']) expect(taken(ok), ok).toBe(utf8(ok).length);
    expect(taken('{"a":  1}')).toBe('{"a": '.length);
    expect(taken('{\n"a": 1}')).toBe(1);
    expect(taken('{"a":\t1}')).toBe('{"a":'.length);
    expect(taken("  {}")).toBe(1);
  });
});
