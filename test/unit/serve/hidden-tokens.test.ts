// Which tokens answers leave out of their text: the special ones, save the tool-call tags tool_choice "auto" reads.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hiddenTokens } from "../../../gpu-runner/src/serve/hidden-tokens.js";
import { CALL_LAYOUTS } from "../../../gpu-runner/src/serve/tool-call.js";
import { Sequence } from "../../../gpu-runner/src/engine/generate/sequence.js";
import { writeByteLevelTokenizer } from "../../../gpu-runner/src/engine/tokenizer/byte-level.js";
import { loadTokenizer, type TextTokenizer } from "../../../gpu-runner/src/engine/tokenizer/tokenizer.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** The byte-level tokenizer with the tool-call tags as added tokens, marked `special` as given. */
async function tokenizerWithTags(special: boolean): Promise<TextTokenizer> {
  const d = await mkdtemp(join(tmpdir(), "tuneserve-hidden-"));
  dirs.push(d);
  await writeByteLevelTokenizer(d, { extraSpecialTokens: [CALL_LAYOUTS.hermes.opening, CALL_LAYOUTS.hermes.closing] });
  const json = JSON.parse(await readFile(join(d, "tokenizer.json"), "utf8"));
  for (const t of json.added_tokens) if (t.id >= 260) t.special = special;
  await writeFile(join(d, "tokenizer.json"), JSON.stringify(json));
  return (await loadTokenizer(d))!;
}

const TAGS = [CALL_LAYOUTS.hermes.opening, CALL_LAYOUTS.hermes.closing];
const ids = (tok: TextTokenizer, text: string) => tok.encode(text, { addSpecialTokens: false });

describe("hiddenTokens", () => {
  it("is the special tokens, but those spelling a kept text", async () => {
    const tok = await tokenizerWithTags(true);
    const [open, close] = [ids(tok, CALL_LAYOUTS.hermes.opening), ids(tok, CALL_LAYOUTS.hermes.closing)];
    expect([open, close]).toEqual([[260], [261]]);
    expect([...hiddenTokens(tok)].sort()).toEqual([256, 257, 258, 259, 260, 261]);
    expect([...hiddenTokens(tok, TAGS)].sort()).toEqual([256, 257, 258, 259]);
  });

  it("never holds an added token not marked special (Qwen2.5's <tool_call>)", async () => {
    const tok = await tokenizerWithTags(false);
    expect(ids(tok, CALL_LAYOUTS.hermes.opening)).toEqual([260]);
    expect([...hiddenTokens(tok)].sort()).toEqual([256, 257, 258, 259]);
  });

  it("keeps a tool call's special tags in the text, so the API finds the call", async () => {
    const tok = await tokenizerWithTags(true);
    const call = '{"name": "f", "arguments": {}}';
    const toolCalls = { jsonSchema: { type: "object", properties: { name: { const: "f" }, arguments: { type: "object", properties: {}, additionalProperties: false } }, required: ["name", "arguments"], additionalProperties: false }, jsonSchemaPath: "tools", ...CALL_LAYOUTS.hermes, parallel: false };
    const answer = [...ids(tok, "hi"), 258, 260, ...ids(tok, call), 261];
    for (const streamText of [true, false]) {
      const seq = new Sequence({ tokens: [1], maxTokens: 64, stopTokens: tok.eosTokenIds, toolCalls, hiddenTokens: hiddenTokens(tok, TAGS) }, tok, { streamText });
      let streamed = "";
      for (const t of answer) if (!seq.done) streamed += seq.accept(Object.assign(new Float32Array(tok.vocabSize), { [t]: 1 }))?.text ?? "";
      const { tail, result } = seq.finish();
      // <|im_start|> (258) is left out; the tags stay.
      expect(result).toMatchObject({ text: `hi<tool_call>${call}</tool_call>`, finishReason: "stop", tokens: answer });
      if (streamText) expect(streamed + tail).toBe(result.text);
    }
  });

  it("lets the opening tag go on across a hidden token, as the text the API reads does: the call is held to the grammar", async () => {
    const tok = await tokenizerWithTags(true);
    const toolCalls = { jsonSchema: { type: "object", properties: { name: { const: "f" }, arguments: { type: "object" } }, required: ["name", "arguments"] }, jsonSchemaPath: "tools", ...CALL_LAYOUTS.hermes, parallel: false };
    const seq = new Sequence({ tokens: [1], maxTokens: 64, stopTokens: tok.eosTokenIds, toolCalls, hiddenTokens: hiddenTokens(tok, TAGS) }, tok, { streamText: false });
    // "<tool_", <|im_start|> (hidden), "call>": the text reads <tool_call>, so a call opens and its closing ends the answer.
    const answer = [...ids(tok, "<tool_"), 258, ...ids(tok, 'call>{"name": "f", "arguments": {}}'), 261];
    for (const t of answer) seq.accept(Object.assign(new Float32Array(tok.vocabSize), { [t]: 1 }));
    expect(seq.done).toBe(true);
    expect(seq.finish().result).toMatchObject({ text: '<tool_call>{"name": "f", "arguments": {}}</tool_call>', finishReason: "stop", tokens: answer });
  });
});
