// tool_choice "auto" in each template format, token by token through a Sequence with the runner's settings for
// that format (autoCallsIn, the tokens the text leaves out), on a byte-level tokenizer whose tags are special
// tokens as in the real models' (Mistral's [TOOL_CALLS], [ARGS] and [CALL_ID], Llama 3's <|python_tag|>): the
// text the runner answers is what the API reads back as calls. And "none" under Llama 3.1's format.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hiddenTokens } from "../../../gpu-runner/src/serve/hidden-tokens.js";
import { CALL_LAYOUTS, autoCallGrammar, autoCallsIn, callTagsOf, noCallText } from "../../../gpu-runner/src/serve/tool-call.js";
import { Sequence } from "../../../gpu-runner/src/engine/generate/sequence.js";
import { writeByteLevelTokenizer } from "../../../gpu-runner/src/engine/tokenizer/byte-level.js";
import { loadTokenizer, type TextTokenizer } from "../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import type { ToolCallFormat } from "../../../gpu-runner/src/engine/tokenizer/tool-call-format.js";
import { callsOf } from "../../../api/src/inference/tool-calls.js";

let dir: string;
let tok: TextTokenizer;
const PYTHON_TAG = 260;
const TOOL_CALLS = 261;
const ARGS = 262;
const CALL_ID = 263;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-call-formats-"));
  await writeByteLevelTokenizer(dir, { extraSpecialTokens: ["<|python_tag|>", "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"] });
  tok = (await loadTokenizer(dir))!;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const tools = [
  { type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { enum: ["Oslo", "Paris"] } }, required: ["city"], additionalProperties: false } } },
  { type: "function" as const, function: { name: "lights", parameters: { type: "object", properties: { on: { type: "boolean" } }, required: ["on"], additionalProperties: false } } },
];
const names = tools.map((t) => t.function.name);
const bytes = (text: string) => tok.encode(text, { addSpecialTokens: false });

/**
 * A sequence under auto in `format` (`callIds`: a template that writes call ids), fed `answer` token by token (each
 * the only token with a logit); its result once done or the answer is spent.
 */
function run(format: ToolCallFormat, answer: number[], parallel = true, callIds = false) {
  const layout = CALL_LAYOUTS[format];
  const toolCalls = autoCallsIn(format, { ...autoCallGrammar(tools, names, format)!, parallel }, callIds);
  const kept = [layout.opening, layout.closing, ...callTagsOf(format, callIds)].filter((t) => t !== "");
  const seq = new Sequence({ tokens: [1], maxTokens: 200, stopTokens: tok.eosTokenIds, toolCalls, hiddenTokens: hiddenTokens(tok, kept) }, tok, { streamText: false });
  const refused: number[] = [];
  for (const t of answer) {
    if (seq.done) break;
    const logits = Object.assign(new Float32Array(tok.vocabSize).fill(-10), { [t]: 10 });
    const before = seq.out.length;
    seq.accept(logits);
    // A stop token ends the sequence without joining its tokens.
    const took = tok.eosTokenIds.includes(t) ? seq.done && seq.out.length === before : seq.out.at(-1) === t;
    if (!took) refused.push(t);
  }
  return { ...seq.finish().result, refused };
}

describe("auto calls through a Sequence, read back by the API", () => {
  it("Llama 3.1: <|python_tag|> left out, the call held to its parameters key, the answer ending with the object", () => {
    const call = '{"name": "get_weather", "parameters": {"city": "Oslo"}}';
    const r = run("llama3_json", [PYTHON_TAG, ...bytes(call), 257]);
    expect(r).toMatchObject({ text: call, finishReason: "stop", refused: [] });
    expect(callsOf(r.text, { names, finish: "tool_calls", auto: true, format: "llama3_json" }).calls).toEqual([{ name: "get_weather", arguments: '{"city": "Oslo"}' }]);
    // An "arguments" key is refused inside the call: the grammar takes "parameters" only.
    expect(run("llama3_json", bytes('{"name": "lights", "arguments": {"on": true}}')).refused.length).toBeGreaterThan(0);
    // Text first: no call can follow, the { is free text.
    expect(run("llama3_json", [...bytes("Hi {x"), 257])).toMatchObject({ text: "Hi {x", finishReason: "stop", refused: [] });
  });

  it("Llama 3.1: <|python_tag|> spelled out in text still opens a call held to the grammar, as the API reads one after it", () => {
    const spelled = [..."<|python_tag|>"].map((c) => c.charCodeAt(0)); // ids 0..255 are the single bytes
    const call = '{"name": "get_weather", "parameters": {"city": "Oslo"}}';
    const r = run("llama3_json", [...spelled, ...bytes(` ${call}`), 257]);
    expect(r).toMatchObject({ text: `<|python_tag|> ${call}`, finishReason: "stop", refused: [] });
    expect(callsOf(r.text, { names, finish: "tool_calls", auto: true, format: "llama3_json" }).calls).toEqual([{ name: "get_weather", arguments: '{"city": "Oslo"}' }]);
    // A city outside the tool's enum: the grammar refuses it, as without the tag.
    expect(run("llama3_json", [...spelled, ...bytes('{"name": "get_weather", "parameters": {"city": "Rome"}}')]).refused.length).toBeGreaterThan(0);
    // A part of the tag, then other text: the answer is text, and free.
    expect(run("llama3_json", [...bytes("<|py {x"), 257])).toMatchObject({ text: "<|py {x", refused: [] });
  });

  it('Llama 3.1 under tool_choice "none": the <|python_tag|> special token (hidden from the text) is refused, and a JSON answer stays free', () => {
    const seq = new Sequence({ tokens: [1], maxTokens: 50, stopTokens: tok.eosTokenIds, bannedText: noCallText("llama3_json", tok), hiddenTokens: hiddenTokens(tok) }, tok, { streamText: false });
    const only = (t: number) => Object.assign(new Float32Array(tok.vocabSize).fill(-10), { [t]: 10 });
    seq.accept(only(PYTHON_TAG));
    expect(seq.out).not.toContain(PYTHON_TAG);
    for (const t of bytes('{"name": "lights", "parameters": {"on": true}}')) seq.accept(only(t));
    expect(seq.finish().result.text.endsWith('{"name": "lights", "parameters": {"on": true}}')).toBe(true);
  });

  it("Mistral: [TOOL_CALLS] kept in the text after the answer's text, the array of calls held to the grammar and ending the answer", () => {
    const list = ' [{"name": "lights", "arguments": {"on": true}}, {"name": "get_weather", "arguments": {"city": "Paris"}}]';
    const r = run("mistral", [...bytes("Sure."), TOOL_CALLS, ...bytes(list), 257]);
    expect(r).toMatchObject({ text: `Sure.[TOOL_CALLS]${list}`, finishReason: "stop", refused: [] });
    expect(callsOf(r.text, { names, finish: "tool_calls", auto: true, format: "mistral" })).toEqual({
      content: "Sure.",
      calls: [
        { name: "lights", arguments: '{"on": true}' },
        { name: "get_weather", arguments: '{"city": "Paris"}' },
      ],
    });
    // Without parallel calls the array holds one: a comma after the first is refused.
    const one = run("mistral", [TOOL_CALLS, ...bytes('[{"name": "lights", "arguments": {"on": true}},')], false);
    expect(one.refused).toEqual(bytes(","));
    // The call's enum holds.
    expect(run("mistral", [TOOL_CALLS, ...bytes('[{"name": "get_weather", "arguments": {"city": "Rome"}}]')]).refused.length).toBeGreaterThan(0);
    // A call may carry the id the template writes in history (the model learnt calls so); the API names calls itself.
    const withIds = ' [{"name": "lights", "arguments": {"on": true}, "id": "a1B2c3D4e"}, {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "f5G6h7I8j"}]';
    const ided = run("mistral", [TOOL_CALLS, ...bytes(withIds), 257]);
    expect(ided).toMatchObject({ text: `[TOOL_CALLS]${withIds}`, finishReason: "stop", refused: [] });
    expect(callsOf(ided.text, { names, finish: "tool_calls", auto: true, format: "mistral" }).calls).toEqual([
      { name: "lights", arguments: '{"on": true}' },
      { name: "get_weather", arguments: '{"city": "Oslo"}' },
    ]);
  });

  it("Mistral: a call's id is held to the 9 letters or digits Mistral's templates want", () => {
    const call = (id: string) => ` [{"name": "lights", "arguments": {"on": true}, "id": "${id}"}]`;
    // (A refused token is replaced by another, so each answer stops at the first byte refused.)
    const refusedIn = (id: string) => run("mistral", [TOOL_CALLS, ...bytes(call(id))]).refused[0];
    expect(run("mistral", [TOOL_CALLS, ...bytes(call("0aZ9bY8cX")), 257])).toMatchObject({ finishReason: "stop", refused: [] });
    expect(refusedIn("a1B2c3D4")).toBe(bytes('"')[0]); // 8 characters: the string cannot close
    expect(refusedIn("a1B2c3D4e5")).toBe(bytes("5")[0]); // a 10th
    expect(refusedIn("a1B2-3D4e")).toBe(bytes("-")[0]);
    expect(refusedIn("a1B2\\u0063D4e")).toBe(bytes("\\")[0]); // no escapes, not even of a letter
    expect(refusedIn("a1B2c3D4é")).toBe(bytes("é")[0]);
    // A string argument named id deeper in the call stays free.
    const idArgument = [{ type: "function" as const, function: { name: "lights", parameters: { type: "object", properties: { id: { type: "string" } }, required: ["id"], additionalProperties: false } } }];
    const free = autoCallsIn("mistral", { ...autoCallGrammar(idArgument, ["lights"], "mistral")!, parallel: true });
    const seq = new Sequence({ tokens: [1], maxTokens: 200, stopTokens: tok.eosTokenIds, toolCalls: free }, tok, { streamText: false });
    const text = '[TOOL_CALLS] [{"name": "lights", "arguments": {"id": "x-1"}, "id": "abcdefghi"}]';
    for (const t of [TOOL_CALLS, ...bytes(text.slice("[TOOL_CALLS]".length))]) seq.accept(Object.assign(new Float32Array(tok.vocabSize).fill(-10), { [t]: 10 }));
    expect(seq.finish().result.text).toBe(text);
  });

  it("Mistral v11: [TOOL_CALLS], [ARGS] and [CALL_ID] kept in the text, each call held to its tool's parameters, another call or the end after it", () => {
    const r = run("mistral_v11", [...bytes("Sure."), TOOL_CALLS, ...bytes("lights"), ARGS, ...bytes('{"on": true}'), TOOL_CALLS, ...bytes("get_weather"), CALL_ID, ...bytes("a1B2c3D4e"), ARGS, ...bytes('{"city": "Paris"}'), 257], true, true);
    expect(r).toMatchObject({ text: 'Sure.[TOOL_CALLS]lights[ARGS]{"on": true}[TOOL_CALLS]get_weather[CALL_ID]a1B2c3D4e[ARGS]{"city": "Paris"}', finishReason: "stop", refused: [] });
    expect(callsOf(r.text, { names, finish: "tool_calls", auto: true, format: "mistral_v11" })).toEqual({
      content: "Sure.",
      calls: [
        { name: "lights", arguments: '{"on": true}' },
        { name: "get_weather", arguments: '{"city": "Paris"}' },
      ],
    });
    // Without parallel calls the first call ends the answer.
    expect(run("mistral_v11", [TOOL_CALLS, ...bytes("lights"), ARGS, ...bytes('{"on": true}'), TOOL_CALLS], false)).toMatchObject({ finishReason: "stop", refused: [] });
    expect(run("mistral_v11", [TOOL_CALLS, ...bytes("lights"), ARGS, ...bytes('{"on": true}'), TOOL_CALLS], false).tokens.at(-1)).not.toBe(TOOL_CALLS);
    // The tool's enum holds, and [ARGS] comes only after a tool's whole name.
    expect(run("mistral_v11", [TOOL_CALLS, ...bytes("get_weather"), ARGS, ...bytes('{"city": "Rome"}')]).refused.length).toBeGreaterThan(0);
    expect(run("mistral_v11", [TOOL_CALLS, ...bytes("light"), ARGS]).refused).toEqual([ARGS]);
  });

  it("Mistral v11 under a template that writes no call ids: [CALL_ID] is refused after a name, as a token or spelled out", () => {
    // (A refused token is replaced by another, so each answer stops at the token refused.)
    expect(run("mistral_v11", [TOOL_CALLS, ...bytes("lights"), CALL_ID]).refused).toEqual([CALL_ID]);
    expect(run("mistral_v11", [TOOL_CALLS, ...bytes("lights"), ...bytes("[C")]).refused).toEqual(bytes("C"));
    expect(run("mistral_v11", [TOOL_CALLS, ...bytes("lights"), ...bytes("[C")], true, true).refused).toEqual([]);
  });

  it("Hermes: as before, the blocks within kept tags", () => {
    const block = '<tool_call>\n{"name": "lights", "arguments": {"on": false}}\n</tool_call>';
    const r = run("hermes", [...bytes(block), 257]);
    expect(r).toMatchObject({ text: block, finishReason: "stop", refused: [] });
    expect(callsOf(r.text, { names, finish: "tool_calls", auto: true }).calls).toEqual([{ name: "lights", arguments: '{"on": false}' }]);
  });
});
