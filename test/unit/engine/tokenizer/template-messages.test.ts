// Messages as chat templates read them: tool-call arguments as objects where they parse, content never null.
import { describe, expect, it } from "vitest";
import { templateMessages, templateTools } from "../../../../gpu-runner/src/engine/tokenizer/template-messages.js";

describe("templateMessages", () => {
  it("gives templates a call's arguments as an object where they parse, as sent otherwise", () => {
    const call = (args: string) => ({ role: "assistant", content: "", tool_calls: [{ id: "c", type: "function" as const, function: { name: "f", arguments: args } }] });
    const [parsed, kept, list] = templateMessages([call('{"a":1}'), call("{not json"), call("[1]")]);
    expect(parsed.tool_calls).toEqual([{ id: "c", type: "function", function: { name: "f", arguments: { a: 1 } } }]);
    expect((kept.tool_calls![0] as { function: { arguments: unknown } }).function.arguments).toBe("{not json");
    expect((list.tool_calls![0] as { function: { arguments: unknown } }).function.arguments).toBe("[1]");
    const plain = { role: "user", content: "hi" };
    expect(templateMessages([plain])[0]).toBe(plain);
    expect(templateMessages([{ role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }] }])[0].content).toBe("");
  });
});

describe("templateTools", () => {
  it("leaves strict out of what the template lists, and the rest as it was", () => {
    const plain = { type: "function" as const, function: { name: "f", parameters: { type: "object" } } };
    const strict = { type: "function" as const, function: { name: "g", description: "d", strict: true } };
    expect(templateTools([plain, strict])).toEqual([plain, { type: "function", function: { name: "g", description: "d" } }]);
    expect(templateTools(undefined)).toBeUndefined();
  });
});
