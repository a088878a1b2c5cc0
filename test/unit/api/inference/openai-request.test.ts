// The OpenAI request shapes: options this server does not implement are refused as fields, whatever the value sent.
import { describe, expect, it } from "vitest";
import { chatRequestSchema, completionRequestSchema } from "../../../../api/src/inference/openai-request.js";

describe("completionRequestSchema", () => {
  const base = { model: "m", prompt: "hi" };

  it("takes response_format only as its off value, {type: text}", () => {
    expect(completionRequestSchema.safeParse({ ...base, response_format: { type: "text" } }).success).toBe(true);
    for (const rf of [{ type: "json_object" }, { type: "text", json_schema: {} }, ["text"], "text"]) {
      const r = completionRequestSchema.safeParse({ ...base, response_format: rf });
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]).toMatchObject({ path: ["response_format"], message: expect.stringMatching(/option of \/v1\/chat\/completions/) });
    }
  });

  it("refuses a response_format nested thousands deep as a bad field, not by overflowing the stack", () => {
    const deep: unknown = JSON.parse("[".repeat(5000) + "]".repeat(5000));
    const r = completionRequestSchema.safeParse({ ...base, response_format: deep });
    expect(r.error?.issues[0].path).toEqual(["response_format"]);
  });
});

describe("chatRequestSchema", () => {
  const base = { model: "m", messages: [{ role: "user", content: "hi" }] };

  it("refuses max_tokens and max_completion_tokens that disagree, and takes them when they agree", () => {
    const r = chatRequestSchema.safeParse({ ...base, max_tokens: 10, max_completion_tokens: 20 });
    expect(r.error?.issues[0]).toMatchObject({ path: ["max_completion_tokens"], message: expect.stringMatching(/same limit and disagree/) });
    expect(chatRequestSchema.safeParse({ ...base, max_tokens: 10, max_completion_tokens: 10 }).success).toBe(true);
  });

  it("takes the openai client's prompt_cache_retention and stream_options.include_obfuscation, which change nothing here", () => {
    expect(chatRequestSchema.safeParse({ ...base, prompt_cache_retention: "24h" }).success).toBe(true);
    expect(chatRequestSchema.safeParse({ ...base, stream: true, stream_options: { include_usage: true, include_obfuscation: false } }).success).toBe(true);
    expect(completionRequestSchema.safeParse({ model: "m", prompt: "hi", stream: true, stream_options: { include_obfuscation: true } }).success).toBe(true);
  });

  it("refuses a misspelt stream_options key by name, rather than streaming without the usage asked for", () => {
    const r = chatRequestSchema.safeParse({ ...base, stream: true, stream_options: { include_usages: true } });
    expect(r.error?.issues[0]).toMatchObject({ path: ["stream_options"], code: "unrecognized_keys" });
  });

  it("refuses a misspelt key inside tools, tool_choice and response_format by name, rather than leaving it out unseen", () => {
    const tool = { type: "function", function: { name: "f", parameters: { type: "object" } } };
    const refused: [Record<string, unknown>, (string | number)[], string][] = [
      [{ tools: [{ type: "function", function: { name: "f", paramters: { type: "object" } } }] }, ["tools", 0, "function"], "paramters"],
      [{ tools: [{ ...tool, strict: true }] }, ["tools", 0], "strict"],
      [{ response_format: { type: "json_object", schema: { type: "object" } } }, ["response_format"], "schema"],
      [{ response_format: { type: "json_schema", json_schema: { name: "x", schema: {}, stict: true } } }, ["response_format", "json_schema"], "stict"],
    ];
    for (const [extra, path, key] of refused) {
      const r = chatRequestSchema.safeParse({ ...base, ...extra });
      expect(r.error?.issues[0], JSON.stringify(extra)).toMatchObject({ code: "unrecognized_keys", path, keys: [key] });
    }
    // tool_choice is a union: its message lists the forms it takes.
    expect(chatRequestSchema.safeParse({ ...base, tools: [tool], tool_choice: { type: "function", function: { name: "f" }, name: "f" } }).error?.issues[0].path).toEqual(["tool_choice"]);
    const ok = { tools: [{ type: "function", function: { name: "f", description: "d", parameters: { type: "object" }, strict: true } }], tool_choice: { type: "function", function: { name: "f" } } };
    expect(chatRequestSchema.safeParse({ ...base, ...ok }).success).toBe(true);
    expect(chatRequestSchema.safeParse({ ...base, response_format: { type: "json_schema", json_schema: { name: "x", description: "d", schema: {}, strict: true } } }).success).toBe(true);
  });
});
