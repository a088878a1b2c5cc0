// The id a call in Mistral's v3 array may carry: 9 ASCII letters or digits, no escapes, checked on the call
// object's own "id" only; the rest of the call is the tools' grammar's to check.
import { describe, expect, it } from "vitest";
import { CallIdCheck } from "../../../../gpu-runner/src/engine/generate/call-id.js";
import { schemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema.js";
import { toolCallGrammar } from "../../../../gpu-runner/src/serve/tool-call.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const tools = [{ type: "function" as const, function: { name: "tag", parameters: { type: "object", properties: { id: { type: "string" }, ids: { type: "array", items: { type: "string" } } }, additionalProperties: false } } }];
const { jsonSchema } = toolCallGrammar(tools, ["tag"], { named: true, format: "mistral" });
const grammar = schemaRecognizer(jsonSchema, "tools", { compact: true });
const fresh = () => new CallIdCheck(grammar.clone());
const call = (id: string, args = "{}") => `{"name": "tag", "arguments": ${args}, "id": "${id}"}`;

describe("CallIdCheck", () => {
  it("takes an id of exactly 9 ASCII letters or digits, and a call without one", () => {
    for (const text of [call("a1B2c3D4e"), call("000000000"), '{"name": "tag", "arguments": {}}']) {
      const c = fresh();
      expect(c.push(utf8(text)), text).toBe(true);
      expect(c.done).toBe(true);
    }
    for (const id of ["", "a1B2c3D4", "a1B2c3D4e5", "a1B2_3D4e", "a1B2 3D4e", "a1B2c3D4\\u0065", "a1B2c3D4é"]) expect(fresh().push(utf8(call(id))), id).toBe(false);
  });

  it("leaves strings named id inside the arguments free", () => {
    const c = fresh();
    expect(c.push(utf8(call("abcdefghi", '{"id": "x-1", "ids": ["", "\\"id\\": \\""]}')))).toBe(true);
    expect(c.done).toBe(true);
  });

  it("accepts what push takes, byte by byte, leaving its state as it was; the id is no free string", () => {
    const text = call("abcdefghi", '{"id": "z"}');
    const c = fresh();
    for (let i = 0; i < text.length; i++) {
      expect(c.accepts(utf8(text.slice(i))), text.slice(i)).toBe(true);
      if (text.slice(0, i).endsWith('"id": "a')) expect(c.inPlainString).toBe(false);
      expect(c.push(utf8(text[i]))).toBe(true);
    }
    expect(c.done).toBe(true);
    const open = fresh();
    open.push(utf8('{"name": "tag", "arguments": {}, "id": "abc'));
    expect(open.inPlainString).toBe(false);
    expect(open.accepts(utf8('defghi"}'))).toBe(true);
    expect(open.accepts(utf8('defgh"}'))).toBe(false);
    const copy = open.clone();
    expect(copy.push(utf8("defghij"))).toBe(false);
    expect(open.accepts(utf8("d"))).toBe(true);
  });
});
