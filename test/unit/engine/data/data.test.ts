// Training data: JSONL validation with line numbers, rendering and loss masks of the three formats with
// the byte-level tokenizer (exact ids), truncation/drop counts, packing, shuffling and batches.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeByteLevelTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/byte-level.js";
import { loadTokenizer, type TextTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { sentencePieceTokenizer } from "../../../helpers/sentencepiece.js";
import { useLlama3Template } from "../../../helpers/llama3-template.js";
import { useMistralTemplate } from "../../../helpers/mistral-template.js";
import { createRng } from "../../../../gpu-runner/src/engine/generate/rng.js";
import { parseRecords } from "../../../../gpu-runner/src/engine/data/records.js";
import { renderRecord, tokenizeRecords } from "../../../../gpu-runner/src/engine/data/render.js";
import { packExamples, rowsToBatch, shuffledOrder, stepMicroBatches, stepsPerEpoch } from "../../../../gpu-runner/src/engine/data/batches.js";

let dir: string;
let tok: TextTokenizer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-data-"));
  await writeByteLevelTokenizer(dir);
  tok = (await loadTokenizer(dir))!;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The byte-level tokenizer with `setup` (a template, a config) written beside it, loaded from a folder removed after. */
async function byteLevelWith(setup: (dir: string) => Promise<void>): Promise<TextTokenizer> {
  const d = await mkdtemp(join(tmpdir(), "tuneserve-data-"));
  try {
    await writeByteLevelTokenizer(d);
    await setup(d);
    return (await loadTokenizer(d))!;
  } finally {
    await rm(d, { recursive: true, force: true });
  }
}

const bytes = (s: string) => [...Buffer.from(s, "utf8")];
const [IM_START, IM_END, EOS] = [258, 259, 257];

describe("parseRecords", () => {
  it("reads the three formats and skips blank lines", () => {
    expect(parseRecords('{"text":"a"}\n\n{"text":"b"}\n')).toEqual([{ format: "text", text: "a" }, { format: "text", text: "b" }]);
    expect(parseRecords('{"prompt":"p","completion":"c"}')[0]).toEqual({ format: "prompt_completion", prompt: "p", completion: "c" });
    expect(parseRecords('{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}')[0].format).toBe("chat");
  });
  it("reads content given as OpenAI's array of text parts as a chat request's: joined with newlines", () => {
    const parts = (...texts: string[]) => texts.map((text) => ({ type: "text", text }));
    const line = JSON.stringify({ messages: [{ role: "user", content: parts("a", "b") }, { role: "assistant", content: parts("c") }] });
    expect(parseRecords(line)[0]).toEqual({ format: "chat", messages: [{ role: "user", content: "a\nb" }, { role: "assistant", content: "c" }] });
    const image = JSON.stringify({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] }, { role: "assistant", content: "c" }] });
    expect(() => parseRecords(image, "f.jsonl")).toThrow(/^f\.jsonl:1: messages\.0\.content\.0: only text parts \(\{"type":"text","text":"…"\}\) are supported; this one is "image_url"/);
  });
  it("reads OpenAI's developer role as the system turn, as a chat request does", () => {
    const line = (role: string) => JSON.stringify({ messages: [{ role, content: "be brief" }, { role: "user", content: "q" }, { role: "assistant", content: "a" }] });
    expect(parseRecords(line("developer"))[0]).toEqual(parseRecords(line("system"))[0]);
    expect(() => parseRecords(line("function"), "f.jsonl")).toThrow(/^f\.jsonl:1: messages\.0\.role: role must be system, developer, user, assistant or tool/);
  });
  it("names the file, the line and the fix", () => {
    expect(() => parseRecords('{"text":"a"}\n\n{oops', "f.jsonl")).toThrow(/^f\.jsonl:3: not valid JSON/);
    expect(() => parseRecords('{"text":"a"}\n{"prompt":"p","completion":"c"}', "f.jsonl")).toThrow(/f\.jsonl:2: is a prompt_completion record but the file's first record is text/);
    expect(() => parseRecords('{"messages":[{"role":"user","content":"q"}]}', "f.jsonl")).toThrow(/f\.jsonl:1: messages: needs at least one assistant message/);
    expect(() => parseRecords('{"prompt":"p","completion":""}', "f.jsonl")).toThrow(/f\.jsonl:1: completion: must not be empty/);
    // A field left out reads as in an upload's line errors and a request body's.
    expect(() => parseRecords('{"prompt":"p"}', "f.jsonl")).toThrow(/^f\.jsonl:1: completion: missing; this field is required \(a string\)$/);
    // An unknown key where a line's shape is strict is named as the field, not as "Unrecognized key" on its parent.
    const pair = { input: { messages: [{ role: "user", content: "q" }], tool: [] }, preferred_output: [{ role: "assistant", content: "a" }], non_preferred_output: [{ role: "assistant", content: "b" }] };
    expect(() => parseRecords(JSON.stringify(pair), "f.jsonl")).toThrow(/^f\.jsonl:1: input\.tool: not a field of this record: check its name/);
    expect(() => parseRecords('{"foo":1}', "f.jsonl")).toThrow(/has none of the keys/);
    expect(() => parseRecords("[1]", "f.jsonl")).toThrow(/must be a JSON object/);
    expect(() => parseRecords("\n\n", "f.jsonl")).toThrow(/holds no record/);
  });
});

describe("renderRecord", () => {
  it("chat: ChatML ids, loss on the assistant content and its <|im_end|> only", () => {
    const ex = renderRecord({ format: "chat", messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }] }, tok);
    const userPart = [IM_START, ...bytes("user\nhi"), IM_END, 10, IM_START, ...bytes("assistant\n")];
    expect(ex.ids).toEqual([...userPart, ...bytes("yo"), IM_END, 10]);
    expect(ex.train).toEqual([...userPart.map(() => false), true, true, true, false]);
  });
  it("chat: every assistant turn of a multi-turn conversation is learned, the user turns are not", () => {
    const ex = renderRecord(
      { format: "chat", messages: [{ role: "system", content: "s" }, { role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "user", content: "c" }, { role: "assistant", content: "d" }] },
      tok,
    );
    const learned = ex.ids.filter((_, i) => ex.train[i]);
    expect(learned).toEqual([...bytes("b"), IM_END, ...bytes("d"), IM_END]);
  });
  it("chat: a weight-0 assistant turn is context only; weight and name do not reach the template", () => {
    const turns = [{ role: "user" as const, content: "a", name: "ann" }, { role: "assistant" as const, content: "b", weight: 0 as const }, { role: "user" as const, content: "c" }, { role: "assistant" as const, content: "d", weight: 1 as const }];
    const ex = renderRecord({ format: "chat", messages: turns }, tok);
    expect(ex.ids.filter((_, i) => ex.train[i])).toEqual([...bytes("d"), IM_END]);
    const plain = renderRecord({ format: "chat", messages: turns.map(({ role, content }) => ({ role, content })) }, tok);
    expect(ex.ids).toEqual(plain.ids);
    const parsed = parseRecords(JSON.stringify({ messages: turns }))[0];
    expect(parsed).toMatchObject({ format: "chat", messages: [{ name: "ann" }, { weight: 0 }, {}, { weight: 1 }] });
    expect(() => parseRecords(JSON.stringify({ messages: [{ role: "user", content: "a" }, { role: "assistant", content: "b", weight: 0 }] }), "f.jsonl")).toThrow(/needs at least one assistant message to train on \(one without weight 0\)/);
    expect(() => parseRecords(JSON.stringify({ messages: [{ role: "user", content: "a", weight: 1 }, { role: "assistant", content: "b" }] }), "f.jsonl")).toThrow(/weight: applies to assistant turns only/);
    // Other keys are dropped (an exported chat's "refusal": null, say).
    expect(parseRecords(JSON.stringify({ messages: [{ role: "user", content: "a" }, { role: "assistant", content: "b", refusal: null }] }))[0]).toMatchObject({ messages: [{}, { role: "assistant", content: "b" }] });
  });
  it("chat with tools: the tools are listed, and an assistant's tool call is learned, the tool's answer is not", () => {
    const tools = [{ type: "function" as const, function: { name: "f" } }];
    const call = { id: "c", type: "function" as const, function: { name: "f", arguments: '{"a":1}' } };
    const ex = renderRecord(
      { format: "chat", tools, messages: [{ role: "user", content: "q" }, { role: "assistant", content: null, tool_calls: [call] }, { role: "tool", tool_call_id: "c", content: "2" }, { role: "assistant", content: "two" }] },
      tok,
    );
    expect(Buffer.from(ex.ids.filter((t) => t < 256)).toString()).toMatch(/^system\n# Tools[^]*<tools>\n\{"type": "function", "function": \{"name": "f"\}\}/);
    const learned = ex.ids.filter((_, i) => ex.train[i]);
    expect(learned).toEqual([...bytes('<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'), IM_END, ...bytes("two"), IM_END]);
  });
  it("chat with tools through a Llama 3.1-style template: the call is learned as the whole JSON message, the ipython answer is not", async () => {
    const llama = await byteLevelWith((d) => useLlama3Template(d));
    const tools = [{ type: "function" as const, function: { name: "f" } }];
    const call = { id: "c", type: "function" as const, function: { name: "f", arguments: '{"a":1}' } };
    const ex = renderRecord(
      { format: "chat", tools, messages: [{ role: "user", content: "q" }, { role: "assistant", content: null, tool_calls: [call] }, { role: "tool", tool_call_id: "c", content: "2" }, { role: "assistant", content: "two" }] },
      llama,
    );
    const text = Buffer.from(ex.ids.filter((t) => t < 256)).toString();
    expect(text).toContain('{"type": "function", "function": {"name": "f"}}');
    expect(text).toContain("ipython\n\n2");
    const learned = ex.ids.filter((_, i) => ex.train[i]);
    expect(learned).toEqual([...bytes('{"name": "f", "parameters": {"a": 1}}'), IM_END, ...bytes("two"), IM_END]);
  });
  it("chat with tools through a Mistral-style template: OpenAI call ids renamed to the 9 characters it takes, the call learned", async () => {
    const mistral = await byteLevelWith((d) => useMistralTemplate(d));
    const tools = [{ type: "function" as const, function: { name: "f" } }];
    const call = { id: "call_abc", type: "function" as const, function: { name: "f", arguments: '{"a":1}' } };
    const ex = renderRecord(
      { format: "chat", tools, messages: [{ role: "user", content: "q" }, { role: "assistant", content: null, tool_calls: [call] }, { role: "tool", tool_call_id: "call_abc", content: "2" }, { role: "assistant", content: "two" }] },
      mistral,
    );
    const learned = Buffer.from(ex.ids.filter((t, i) => ex.train[i] && t < 256)).toString();
    expect(learned).toBe('[TOOL_CALLS] [{"name": "f", "arguments": {"a": 1}, "id": "c00000001"}] two');
  });
  it("chat with tools and several user turns through a Mistral-style template: only the last assistant turn is learned", async () => {
    // Its tools go before the last user turn, so rendering the first turns alone puts them elsewhere: the
    // earlier answers cannot be located, and the last one, rendered as serving renders its prompt, can.
    const mistral = await byteLevelWith((d) => useMistralTemplate(d));
    const tools = [{ type: "function" as const, function: { name: "f" } }];
    const turns = [{ role: "user" as const, content: "a" }, { role: "assistant" as const, content: "b" }, { role: "user" as const, content: "c" }, { role: "assistant" as const, content: "d" }];
    const ex = renderRecord({ format: "chat", tools, messages: turns }, mistral);
    expect(ex.lastTurnOnly).toBe(true);
    expect(Buffer.from(ex.ids.filter((t) => t < 256)).toString()).toMatch(/^\[INST\] a\[\/INST\] b\[AVAILABLE_TOOLS\] \[.*\]\[\/AVAILABLE_TOOLS\]\[INST\] c\[\/INST\] d$/);
    expect(ex.ids.filter((_, i) => ex.train[i])).toEqual([...bytes(" d"), EOS]);
    // One user turn: every assistant turn is located, as before.
    const single = renderRecord({ format: "chat", tools, messages: [...turns.slice(0, 2), { role: "assistant", content: "e" }] }, mistral);
    expect(single.lastTurnOnly).toBeUndefined();
    expect(single.ids.filter((_, i) => single.train[i])).toEqual([...bytes(" b"), EOS, ...bytes(" e"), EOS]);
    const d = tokenizeRecords(parseRecords([JSON.stringify({ tools, messages: turns }), JSON.stringify({ messages: turns })].join("\n")), mistral, 256);
    expect(d.lastTurnOnly).toBe(1);
    expect(d.examples).toHaveLength(2);
    expect("lastTurnOnly" in d.examples[0]).toBe(false);
  });
  it("chat: a template whose renderings of the first turns are not prefixes of the whole, not even before the last turn, is refused", async () => {
    // The message count goes first, so no shorter conversation renders to a prefix of the whole.
    const counting = await byteLevelWith((d) => writeFile(join(d, "tokenizer_config.json"), JSON.stringify({ bos_token: "<|bos|>", eos_token: "<|eos|>", chat_template: "{{ messages | length }}{% for m in messages %}{{ m.content + eos_token }}{% endfor %}" })));
    const turns = [{ role: "user" as const, content: "a" }, { role: "assistant" as const, content: "b" }, { role: "user" as const, content: "c" }, { role: "assistant" as const, content: "d" }];
    expect(() => renderRecord({ format: "chat", messages: turns }, counting)).toThrow(/^chat template: rendering messages 0\.\.1 does not give a prefix of the whole conversation, so assistant turns cannot be located; use a template that renders turn by turn$/);
  });
  it("prompt/completion: the prompt is masked, the completion and EOS are learned", () => {
    const ex = renderRecord({ format: "prompt_completion", prompt: "ab", completion: "c" }, tok);
    expect(ex).toEqual({ ids: [97, 98, 99, EOS], train: [false, false, true, true] });
  });
  it("prompt/completion with SentencePiece: the completion goes on from the prompt, without a '▁' of its own", async () => {
    const sp = await mkdtemp(join(tmpdir(), "tuneserve-data-"));
    await writeFile(join(sp, "tokenizer.json"), JSON.stringify(sentencePieceTokenizer("prepend")));
    await writeFile(join(sp, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>", eos_token: "</s>" }));
    const llama = (await loadTokenizer(sp))!;
    const ex = renderRecord({ format: "prompt_completion", prompt: "Q:", completion: " A" }, llama);
    // As written: one space, where encoding the completion as new text learned two ("▁▁A").
    expect(llama.decode(ex.ids, { skipSpecialTokens: true })).toBe("Q: A");
    expect(ex.ids.filter((_, i) => ex.train[i])).toEqual([...llama.encode(" A", { continues: true }), 2]);
    await rm(sp, { recursive: true, force: true });
  });
  it("text: every token but the first (nothing predicts it) and EOS", () => {
    expect(renderRecord({ format: "text", text: "xyz" }, tok)).toEqual({ ids: [120, 121, 122, EOS], train: [false, true, true, true] });
  });
  it("text with add_eos_token: one EOS, the tokenizer's own (as /v1/completions encodes a prompt, with it)", async () => {
    const eosTok = await byteLevelWith((d) => writeFile(join(d, "tokenizer_config.json"), JSON.stringify({ bos_token: "<|bos|>", eos_token: "<|eos|>", add_eos_token: true })));
    expect(renderRecord({ format: "text", text: "xyz" }, eosTok).ids).toEqual([120, 121, 122, EOS]);
    const ex = renderRecord({ format: "prompt_completion", prompt: "ab", completion: "c" }, eosTok);
    expect(ex.ids).toEqual([...eosTok.encode("ab"), 99, EOS]);
    expect(ex.ids.slice(0, 3)).toEqual([97, 98, EOS]);
  });
});

describe("tokenizeRecords", () => {
  it("truncates to seqLen, counting cut examples and dropping those left with nothing to learn", () => {
    const recs = [...parseRecords('{"text":"abcdefgh"}\n{"text":"ab"}'), ...parseRecords('{"prompt":"long prompt here","completion":"c"}')];
    const d = tokenizeRecords(recs, tok, 5);
    expect(d.truncated).toBe(2); // 9 tokens → 5; the prompt/completion record (18) → 5
    expect(d.dropped).toBe(1); // its completion was cut away
    expect(d.examples.map((e) => e.ids)).toEqual([bytes("abcde"), [...bytes("ab"), EOS]]);
    expect(() => tokenizeRecords(recs, tok, 1)).toThrow(/seqLen=1/);
  });
  it("names the record a chat template refuses", async () => {
    const sp = await mkdtemp(join(tmpdir(), "tuneserve-data-"));
    const alternate = "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}{{ m['content'] }}{% endfor %}";
    await writeFile(join(sp, "tokenizer.json"), JSON.stringify(sentencePieceTokenizer("prepend")));
    await writeFile(join(sp, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>", eos_token: "</s>", chat_template: alternate }));
    const mistral = (await loadTokenizer(sp))!;
    await rm(sp, { recursive: true, force: true });
    const chat = (...roles: string[]) => JSON.stringify({ messages: roles.map((role) => ({ role, content: "x" })) });
    const recs = parseRecords([chat("user", "assistant"), "", chat("user", "user", "assistant")].join("\n"));
    expect(() => tokenizeRecords(recs, mistral, 64, "validation.jsonl")).toThrow(/^validation\.jsonl: record 2 \(counting non-blank lines\): messages: the model's chat template refuses them: Conversation roles must alternate$/);
  });
});

describe("packing, shuffling, batches", () => {
  const ex = (n: number, base: number) => ({ ids: Array.from({ length: n }, (_, i) => base + i), train: Array.from({ length: n }, (_, i) => i > 0) });
  it("packs consecutive examples greedily without splitting one; the boundary token is not a target", () => {
    const rows = packExamples([ex(3, 10), ex(2, 20), ex(4, 30), ex(1, 40)], 6);
    expect(rows.map((r) => r.ids)).toEqual([[10, 11, 12, 20, 21], [30, 31, 32, 33, 40]]);
    expect(rows[0].train).toEqual([false, true, true, false, true]);
    expect(() => packExamples([ex(7, 0)], 6)).toThrow(/truncate first/);
  });
  it("shuffles deterministically per seed, as a permutation", () => {
    const a = shuffledOrder(20, createRng(5));
    expect(a).toEqual(shuffledOrder(20, createRng(5)));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(a).not.toEqual(shuffledOrder(20, createRng(6)));
  });
  it("batches right-pad rows; targets are the next token and the mask follows train flags", () => {
    const b = rowsToBatch([ex(3, 10), ex(2, 20)]);
    expect(b.rows).toEqual([[10, 11, 12], [20, 21, 0]]);
    expect(b.targets).toEqual([[11, 12, 0], [21, 0, 0]]);
    expect(b.mask).toEqual([[1, 1, 0], [1, 0, 0]]);
  });
  it("splits a step into gradAccum micro-batches and counts its real tokens", () => {
    const rows = [ex(3, 0), ex(2, 10), ex(4, 20), ex(5, 30), ex(2, 40)];
    expect(stepsPerEpoch(rows.length, 2, 2)).toBe(2);
    const s0 = stepMicroBatches(rows, [4, 3, 2, 1, 0], 0, 2, 2);
    expect(s0.micro.map((m) => m.rows.length)).toEqual([2, 2]);
    expect(s0.tokens).toBe(2 + 5 + 4 + 2);
    const s1 = stepMicroBatches(rows, [4, 3, 2, 1, 0], 1, 2, 2);
    expect(s1.micro[0].rows).toEqual([[0, 1, 2]]);
  });
});
