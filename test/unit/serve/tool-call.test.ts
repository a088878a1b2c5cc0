// The runner's side of tool calls: the grammar of a forced call of one tool or several, errors that name the
// tool's parameters, the call's opening in the template's format, and which templates "auto" can read.
import { describe, expect, it } from "vitest";
import { CALL_LAYOUTS, assertReadableToolCalls, autoCallGrammar, autoCallsIn, callTagsOf, keepsCallTags, noCallText, toolCallGrammar, toolCallOpening } from "../../../gpu-runner/src/serve/tool-call.js";
import { schemaRecognizer } from "../../../gpu-runner/src/engine/generate/json-schema.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const tool = (name: string, parameters?: Record<string, unknown>) => ({ type: "function" as const, function: { name, ...(parameters ? { parameters } : {}) } });
/** A tokenizer's special tokens, spelled `texts` (ids 0, 1, …). */
const specials = (texts: string[]) => ({ specialTokenIds: new Set(texts.map((_, i) => i)), tokenBytes: (id: number) => utf8(texts[id]) });
const add = tool("add", { type: "object", properties: { a: { type: "integer" } }, required: ["a"] });

describe("toolCallGrammar", () => {
  it("is the tool's parameters for one name, named by the tool's path", () => {
    expect(toolCallGrammar([tool("ping"), add], ["add"])).toEqual({ jsonSchema: add.function.parameters, jsonSchemaPath: "tools.1.function.parameters", jsonCompact: true });
    // No parameters (or {}): an empty object.
    for (const t of [tool("ping"), tool("ping", {})]) {
      const { jsonSchema, jsonSchemaPath } = toolCallGrammar([t], ["ping"]);
      const r = schemaRecognizer(jsonSchema, jsonSchemaPath);
      expect(r.accepts(utf8('{"'))).toBe(false);
      expect(r.push(utf8("{}")) && r.done).toBe(true);
    }
  });

  it("is a union of {name, arguments} for several names", () => {
    const { jsonSchema, jsonSchemaPath } = toolCallGrammar([tool("ping"), add], ["ping", "add"]);
    const r = schemaRecognizer(jsonSchema, jsonSchemaPath);
    expect(r.push(utf8('{"name":"add","arguments":{"a":2}}')) && r.done).toBe(true);
    expect(schemaRecognizer(jsonSchema, jsonSchemaPath).accepts(utf8('{"name":"add","arguments":{}}'))).toBe(false);
  });

  it("is {name, arguments} for one name too when named (the calls auto reads)", () => {
    const { jsonSchema, jsonSchemaPath } = toolCallGrammar([tool("ping"), add], ["add"], { named: true });
    expect(schemaRecognizer(jsonSchema, jsonSchemaPath).accepts(utf8('{"a"'))).toBe(false);
    const r = schemaRecognizer(jsonSchema, jsonSchemaPath);
    expect(r.push(utf8('{"name":"add","arguments":{"a":2}}')) && r.done).toBe(true);
  });

  it("keys the arguments as the template's format does: parameters in Llama 3.1's calls", () => {
    for (const [names, o] of [[["ping", "add"], {}], [["add"], { named: true }]] as const) {
      const { jsonSchema, jsonSchemaPath } = toolCallGrammar([tool("ping"), add], [...names], { ...o, format: "llama3_json" });
      const r = schemaRecognizer(jsonSchema, jsonSchemaPath);
      expect(r.push(utf8('{"name":"add","parameters":{"a":2}}')) && r.done).toBe(true);
      expect(schemaRecognizer(jsonSchema, jsonSchemaPath).accepts(utf8('{"name":"add","arguments"'))).toBe(false);
    }
    const auto = autoCallGrammar([tool("ping"), add], ["ping", "add"], "llama3_json")!;
    expect(schemaRecognizer(auto.jsonSchema, auto.jsonSchemaPath).push(utf8('{"name":"ping","parameters":{}}'))).toBe(true);
    expect(schemaRecognizer(auto.jsonSchema, auto.jsonSchemaPath).accepts(utf8('{"name":"ping","arguments"'))).toBe(false);
  });

  it("lets a Mistral (v3) call carry the id its template writes beside name and arguments in history, and no other key", () => {
    const auto = autoCallGrammar([tool("ping"), add], ["ping", "add"], "mistral")!;
    const r = () => schemaRecognizer(auto.jsonSchema, auto.jsonSchemaPath);
    for (const text of ['{"name":"add","arguments":{"a":2},"id":"a1B2c3D4e"}', '{"name":"add","arguments":{"a":2}}', '{"id":"a1B2c3D4e","name":"ping","arguments":{}}']) {
      const got = r();
      expect(got.push(utf8(text)) && got.done, text).toBe(true);
    }
    expect(r().accepts(utf8('{"name":"add","arguments":{"a":2},"call_id"'))).toBe(false);
    expect(r().accepts(utf8('{"name":"add","arguments":{"a":2},"id":7'))).toBe(false);
    // Other formats' calls take no id.
    const hermes = autoCallGrammar([tool("ping"), add], ["ping", "add"], "hermes")!;
    expect(schemaRecognizer(hermes.jsonSchema, hermes.jsonSchemaPath).accepts(utf8('{"name":"ping","arguments":{},"id"'))).toBe(false);
  });

  it("gives each branch of a tool's top-level anyOf its own {name, arguments}", () => {
    const either = tool("either", { anyOf: [{ type: "object", properties: { a: { type: "boolean" } }, required: ["a"] }, { type: "object", properties: { b: { type: "null" } }, required: ["b"] }] });
    const { jsonSchema, jsonSchemaPath } = toolCallGrammar([add, either], ["add", "either"]);
    for (const text of ['{"name":"either","arguments":{"a":true}}', '{"name":"either","arguments":{"b":null}}', '{"name":"add","arguments":{"a":1}}']) {
      const r = schemaRecognizer(jsonSchema, jsonSchemaPath);
      expect(r.push(utf8(text)) && r.done, text).toBe(true);
    }
  });

  it("names the tool's parameters in what it cannot enforce", () => {
    expect(() => toolCallGrammar([add, tool("f", { type: "object", properties: { s: { type: "string", minLength: 2 } } })], ["add", "f"])).toThrow(/^tools\.1\.function\.parameters\.properties\.s\.minLength: this keyword is not supported/);
    expect(() => toolCallGrammar([add], ["nope"])).toThrow(/nope is not one of the tools/);
  });
});

describe("toolCallOpening", () => {
  it("is nothing under auto when a tool's parameters use what the grammar cannot enforce", () => {
    expect(autoCallGrammar([tool("ping"), add], ["ping", "add"])?.jsonSchemaPath).toBe("tools");
    const find = tool("find", { type: "object", properties: { q: { type: "string", pattern: "^a" } } });
    expect(autoCallGrammar([tool("ping"), find], ["ping", "find"])).toBeNull();
    // A strict tool's calls must follow its parameters: what cannot be enforced is refused, named.
    const strict = { ...find, function: { ...find.function, strict: true } };
    expect(() => autoCallGrammar([tool("ping"), strict], ["ping", "find"])).toThrow(/^tools\.1\.function\.parameters\.properties\.q\.pattern: this keyword is not supported/);
    // Strict is per tool: another tool's unenforceable parameters leave the calls unchecked.
    const ping = { ...tool("ping"), function: { name: "ping", strict: true } };
    expect(autoCallGrammar([ping, find], ["ping", "find"])).toBeNull();
  });

  it("checks a tool's parameters at the depth they sit at in the call, naming the tool", () => {
    let params: Record<string, unknown> = { type: "object", properties: {} };
    for (let i = 1; i < 32; i++) params = { type: "object", properties: { a: params } }; // 32 levels
    const deep = tool("deep", params);
    expect(toolCallGrammar([deep], ["deep"]).jsonSchemaPath).toBe("tools.0.function.parameters");
    for (const call of [() => toolCallGrammar([deep], ["deep"], { named: true }), () => toolCallGrammar([deep, add], ["deep", "add"])]) {
      expect(call).toThrow(/^tools\.0\.function\.parameters(\.properties\.a){31}: schemas nested deeper than 32 levels/);
    }
    expect(autoCallGrammar([deep, add], ["deep", "add"])).toBeNull();
  });

  it("opens a Hermes-style call up to what the grammar takes, and nothing for other templates", () => {
    expect(toolCallOpening("hermes", ["get_weather"])).toBe('<tool_call>\n{"name": "get_weather", "arguments": ');
    expect(toolCallOpening("hermes", ["a", "b"])).toBe("<tool_call>\n");
    expect(toolCallOpening(null, ["a"])).toBe("");
  });

  it("opens a Llama 3.1 call with its name and parameters key for one tool, nothing for several", () => {
    expect(toolCallOpening("llama3_json", ["get_weather"])).toBe('{"name": "get_weather", "parameters": ');
    expect(toolCallOpening("llama3_json", ["a", "b"])).toBe("");
  });

  it("opens a Mistral call with [TOOL_CALLS] and the array, and the name and arguments key for one tool", () => {
    expect(toolCallOpening("mistral", ["get_weather"])).toBe('[TOOL_CALLS] [{"name": "get_weather", "arguments": ');
    expect(toolCallOpening("mistral", ["a", "b"])).toBe("[TOOL_CALLS] [");
  });

  it("opens a newer Mistral call with [TOOL_CALLS], and the name and [ARGS] for one tool", () => {
    expect(toolCallOpening("mistral_v11", ["get_weather"])).toBe("[TOOL_CALLS]get_weather[ARGS]");
    expect(toolCallOpening("mistral_v11", ["a", "b"])).toBe("[TOOL_CALLS]");
  });
});

describe("noCallText", () => {
  it('bans the opening of a call under tool_choice "none" where the format is known', () => {
    expect(noCallText("hermes")).toBe("<tool_call");
    expect(noCallText(null)).toBeUndefined();
    // A Llama 3.1 call is the whole answer's JSON, which text may be too: only <|python_tag|> is banned, and only
    // where the tokenizer has it as a special token (a model writes it to open a call; a `{` stays free).
    expect(noCallText("llama3_json")).toBeUndefined();
    expect(noCallText("llama3_json", specials(["<|eot_id|>", "<|python_tag|>"]))).toBe("<|python_tag|>");
    expect(noCallText("llama3_json", specials(["<|eot_id|>"]))).toBeUndefined();
    expect(noCallText("hermes", specials(["<|python_tag|>"]))).toBe("<tool_call");
    expect(noCallText("mistral")).toBe("[TOOL_CALLS");
    expect(noCallText("mistral_v11")).toBe("[TOOL_CALLS");
  });
});

describe("keepsCallTags", () => {
  it('keeps the tags in the text under "auto", with a grammar on the calls or without, and in a forced call held in the format', () => {
    const grammar = { jsonSchema: {}, jsonSchemaPath: "tools", parallel: true };
    expect(keepsCallTags({ format: "tool_auto", autoCalls: grammar })).toBe(true);
    expect(keepsCallTags({ format: "tool_auto" })).toBe(true);
    expect(keepsCallTags({ format: "tool_call", autoCalls: { ...grammar, parallel: false, opened: true } })).toBe(true);
    expect(keepsCallTags({ format: "tool_call" })).toBe(false);
    expect(keepsCallTags({ format: "text" })).toBe(false);
    expect(keepsCallTags({})).toBe(false);
  });
});

describe("assertReadableToolCalls", () => {
  it('takes "auto" only with a template whose calls the API reads, naming tool_choice otherwise', () => {
    expect(() => assertReadableToolCalls("hermes")).not.toThrow();
    expect(() => assertReadableToolCalls("llama3_json")).not.toThrow();
    expect(() => assertReadableToolCalls("mistral")).not.toThrow();
    expect(() => assertReadableToolCalls("mistral_v11")).not.toThrow();
    expect(() => assertReadableToolCalls(null)).toThrow(/^tool_choice: "auto" needs a chat template/);
    // The message names every format read, so that a user can tell whether another template would do.
    for (const named of ["<tool_call>", '"parameters"', "[TOOL_CALLS]", "[ARGS]"]) expect(() => assertReadableToolCalls(null)).toThrow(named);
  });
});

describe("CALL_LAYOUTS", () => {
  it("puts Hermes calls between tags anywhere after text, and a Llama 3.1 call as the whole answer", () => {
    expect(CALL_LAYOUTS.hermes).toMatchObject({ opening: "<tool_call>", closing: "</tool_call>", leading: false, list: false, argumentsKey: "arguments" });
    expect(CALL_LAYOUTS.llama3_json).toMatchObject({ opening: "", closing: "", leading: true, list: false, argumentsKey: "parameters" });
    expect(CALL_LAYOUTS.mistral).toMatchObject({ opening: "[TOOL_CALLS]", closing: "", leading: false, list: true, argumentsKey: "arguments" });
    expect(CALL_LAYOUTS.mistral_v11).toMatchObject({ opening: "[TOOL_CALLS]", closing: "", leading: false, list: false, named: true, callTags: ["[ARGS]"] });
  });

  it("has [CALL_ID] among a newer Mistral call's tags, and ids in its grammar, only where the template writes call ids", () => {
    expect(callTagsOf("mistral_v11", false)).toEqual(["[ARGS]"]);
    expect(callTagsOf("mistral_v11", true)).toEqual(["[ARGS]", "[CALL_ID]"]);
    expect(callTagsOf("hermes", true)).toEqual([]);
    const calls = { jsonSchema: {}, jsonSchemaPath: "tools", parallel: true };
    expect(autoCallsIn("mistral_v11", calls)).toMatchObject({ callTags: ["[ARGS]"], callIds: false });
    expect(autoCallsIn("mistral_v11", calls, true)).toMatchObject({ callTags: ["[ARGS]", "[CALL_ID]"], callIds: true });
  });
});
