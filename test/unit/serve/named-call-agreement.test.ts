// The runner's grammar for Mistral's newer calls (named-call.ts, under auto and as a forced call among several
// tools) and the API's reading of them (named-tool-calls.ts) agree: answers walked at random through the grammar,
// over a vocabulary whose tokens cross the call's edges (`}[TOOL_CALLS]`, `[ARGS]{"`, `"}\n`, `GS]`), tags as
// special tokens and as text, names that are prefixes of others, brackets in strings, and max_tokens cutting
// anywhere. A finished answer that opened a call is read as calls, with the text before it as content, and
// every call read has an object for arguments.
import { describe, expect, it } from "vitest";
import { autoToolCalls } from "../../../gpu-runner/src/engine/generate/sequence-constraints.js";
import { autoCallGrammar, autoCallsIn, toolCallGrammar } from "../../../gpu-runner/src/serve/tool-call.js";
import { callsOf, type ToolCallShape } from "../../../api/src/inference/tool-calls.js";

const tools = [
  { type: "function" as const, function: { name: "get", parameters: { type: "object", properties: { key: { type: "string" }, list: { type: "array", items: { type: "integer" } } }, required: ["key"], additionalProperties: false } } },
  { type: "function" as const, function: { name: "get_w", parameters: { type: "object", properties: { c: { enum: ["a]", "b}"] } }, required: ["c"], additionalProperties: false } } },
  { type: "function" as const, function: { name: "no" } },
];
const names = tools.map((t) => t.function.name);
// Ids 0–3 are special (the end of sequence and the call's tags); every printable ASCII byte keeps a walk from dead ends.
const words = ["</s>", "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", " get", "get_w", "_w", "AR", "GS]", "[ARGS]{\"", "]{", "{\"", "\": \"", "\":", " [", "]}", "a]", "b}", "\"}", "}}", "\"},", "{}", "}[TOOL_CALLS]", "\n\n", "é", "abcdefghi", "CALL_ID]", "[1, 2]}", "\"}\n"];
words.push(...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)));
const utf8 = (s: string) => new TextEncoder().encode(s);
const tok = { decode: () => "", tokenBytes: (t: number) => utf8(words[t]), vocabSize: words.length, specialTokenIds: new Set([0, 1, 2, 3]) };
const EOS = 0;

let seed = 7;
const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;

/**
 * One answer picked at random among the tokens the grammar allows (`callIds`: under a template that writes call
 * ids), [TOOL_CALLS] favoured; its text and whether max_tokens cut it.
 */
function walk(forced: boolean, parallel: boolean, callIds: boolean): { text: string; cut: boolean } {
  const grammar = forced ? toolCallGrammar(tools, names, { format: "mistral_v11" }) : autoCallGrammar(tools, names, "mistral_v11")!;
  const calls = autoCallsIn("mistral_v11", { jsonSchema: grammar.jsonSchema, jsonSchemaPath: grammar.jsonSchemaPath, parallel: parallel && !forced, ...(forced ? { opened: true } : {}) }, callIds);
  const c = autoToolCalls(tok, new Set([EOS]), calls);
  let text = "";
  const maxTokens = 3 + Math.floor(random() * 40);
  for (let n = 0; n < maxTokens; n++) {
    const logits = new Float32Array(words.length).map(() => random() * 10);
    logits[1] += 3;
    c.mask(logits);
    const t = logits.indexOf(Math.max(...logits));
    if (t === EOS) return { text, cut: false };
    text += words[t];
    if (c.take(t)) return { text, cut: false };
  }
  return { text, cut: true };
}

describe("mistral_v11 calls: what the runner's grammar lets through, the API reads", () => {
  it("reads every finished call, the content before it, and arguments that are objects, forced or auto, cut or not", () => {
    for (let n = 0; n < 300; n++) {
      const forced = random() < 0.3;
      const parallel = random() < 0.7;
      const callIds = random() < 0.5;
      const { text, cut } = walk(forced, parallel, callIds);
      // No id after a call's name where the template writes none (the walk's strings could spell one, in principle).
      if (!callIds) expect(text).not.toMatch(/\[TOOL_CALLS\][ \n]?[\w-]*\[CALL_ID\]/);
      const shape: ToolCallShape = forced ? { names, finish: "tool_calls", format: "mistral_v11" } : { names, finish: "tool_calls", auto: true, single: !parallel, format: "mistral_v11" };
      const read = callsOf(text, shape, cut);
      const at = text.indexOf("[TOOL_CALLS]");
      const why = JSON.stringify({ forced, parallel, text, cut, read });
      if (!cut && (forced || at >= 0)) {
        expect(read.calls.length, why).toBeGreaterThan(0);
        expect(read.content, why).toBe(forced ? "" : text.slice(0, at));
      }
      for (const call of read.calls) expect(JSON.parse(call.arguments), why).toBeTypeOf("object");
    }
  });
});
