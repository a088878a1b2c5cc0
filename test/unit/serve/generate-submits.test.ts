// The serving worker's submits of a /v1/generate request as to tool calls: a forced call is a JSON grammar, save
// one among several tools under a newer Mistral template, which the runner holds to `name[ARGS]{…}` after the
// [TOOL_CALLS] it puts in the prompt (the calls' grammar of "auto", opened, one call).
import { describe, expect, it } from "vitest";
import { generateRequestSchema } from "../../../api/src/inference/runner-protocol.js";
import { toSubmits } from "../../../gpu-runner/src/serve/generate-submits.js";
import { jsonRecognizer } from "../../../gpu-runner/src/engine/generate/sequence-constraints.js";

const tool = (name: string) => ({ type: "function" as const, function: { name, parameters: { type: "object", properties: { on: { type: "boolean" } }, required: ["on"] } } });
const request = (tool_names: string[], response_format: "tool_call" | "tool_auto" = "tool_call") =>
  generateRequestSchema.parse({ request_id: "r", model: "m", input: { messages: [{ role: "user", content: "hi" }], tools: [tool("a"), tool("b")] }, response_format, tool_names, seed: 1 });

describe("toSubmits with tools", () => {
  it("forces a call among several tools under a newer Mistral template as one opened call in its format, not JSON", () => {
    const [s] = toSubmits(request(["a", "b"]), "id", null, "mistral_v11");
    expect(s).toMatchObject({ json: false, toolNames: ["a", "b"], autoCalls: { jsonSchemaPath: "tools", parallel: false, opened: true } });
    expect(s.jsonSchema).toBeUndefined();
  });

  it("forces one tool's arguments, and any call in other formats, as JSON", () => {
    expect(toSubmits(request(["a"]), "id", null, "mistral_v11")[0]).toMatchObject({ json: true, jsonSchemaPath: "tools.0.function.parameters" });
    for (const format of ["hermes", "mistral", "llama3_json", null] as const) {
      const [s] = toSubmits(request(["a", "b"]), "id", null, format);
      expect(s, String(format)).toMatchObject({ json: true, jsonSchemaPath: "tools" });
      expect(s.autoCalls, String(format)).toBeUndefined();
    }
  });

  it("holds the id a forced call among several tools may carry under Mistral's v3 template to 9 letters or digits", () => {
    const [s] = toSubmits(request(["a", "b"]), "id", null, "mistral");
    const call = (id: string) => new TextEncoder().encode(`{"name": "a", "arguments": {"on": true}, "id": "${id}"}`);
    expect(jsonRecognizer(s).push(call("a1B2c3D4e"))).toBe(true);
    for (const id of ["a1B2c3D4", "a1B2c3D4e5", "a1B2-3D4e"]) expect(jsonRecognizer(s).push(call(id)), id).toBe(false);
    // Other formats' calls have no id.
    expect(jsonRecognizer(toSubmits(request(["a", "b"]), "id", null, "hermes")[0]).push(call("a1B2c3D4e"))).toBe(false);
  });

  it('gives "auto" the calls\' grammar, parallel as asked', () => {
    expect(toSubmits(request(["a", "b"], "tool_auto"), "id", null, "mistral_v11")[0]).toMatchObject({ json: false, autoCalls: { jsonSchemaPath: "tools", parallel: true } });
  });
});
