// One sequence token by token, on hand-made logits: stop tokens end it unemitted, stop strings cut the
// text, max tokens bound it, text that may begin a stop string is held back and flushed at the end.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Sequence, type SequenceRequest } from "../../../../gpu-runner/src/engine/generate/sequence.js";
import { loadTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { sentencePieceTokenizer } from "../../../helpers/sentencepiece.js";
import { writeByteLevelTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/byte-level.js";

const V = 26;
/** Token id → one letter. */
const letters = { decode: (ids: number[]) => ids.map((i) => String.fromCharCode(97 + i)).join("") };
/** Logits whose greedy pick is `token`. */
const pick = (token: number, Arr: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array) => {
  const row = new Arr(V);
  row[token] = 1;
  return row;
};
const ids = (word: string) => [...word].map((c) => c.charCodeAt(0) - 97);

/** Feeds the sequence the letters of `word` (greedily) until it is done; returns what each accept gave. */
function feed(seq: Sequence, word: string) {
  const got: ({ token: number; text: string } | null)[] = [];
  for (const t of ids(word)) {
    if (seq.done) break;
    got.push(seq.accept(pick(t)));
  }
  return got;
}

const req = (r: Partial<SequenceRequest>): SequenceRequest => ({ tokens: [0, 1, 2], maxTokens: 10, ...r });

describe("Sequence", () => {
  it("ends on a stop token without emitting it", () => {
    const seq = new Sequence(req({ stopTokens: [ids("z")[0]] }), letters, { streamText: true });
    const got = feed(seq, "abzc");
    expect(got).toEqual([{ token: 0, text: "a" }, { token: 1, text: "b" }, null]);
    expect(seq.done).toBe(true);
    expect(seq.finish()).toEqual({ tail: "", result: { tokens: [0, 1], text: "ab", finishReason: "stop", promptTokens: 3, completionTokens: 2 } });
  });

  it("cuts the text before a stop string and holds back its possible start", () => {
    const seq = new Sequence(req({ stop: ["cd"] }), letters, { streamText: true });
    const got = feed(seq, "abcde");
    expect(got.map((g) => g?.text)).toEqual(["a", "b", "", ""]);
    const { tail, result } = seq.finish();
    expect(tail).toBe("");
    expect(result).toMatchObject({ tokens: ids("abcd"), text: "ab", finishReason: "stop" });
  });

  it("ends at max tokens with reason length", () => {
    const seq = new Sequence(req({ maxTokens: 3 }), letters, { streamText: true });
    feed(seq, "abcdef");
    expect(seq.out).toEqual(ids("abc"));
    expect(seq.finish().result).toMatchObject({ text: "abc", finishReason: "length", completionTokens: 3 });
  });

  it("flushes held-back text at the end when no stop string completed", () => {
    const seq = new Sequence(req({ maxTokens: 2, stop: ["xyz"] }), letters, { streamText: false });
    expect(feed(seq, "axy").map((g) => g?.text)).toEqual(["a", ""]);
    const { tail, result } = seq.finish();
    expect(tail).toBe("x");
    expect(result).toMatchObject({ text: "ax", finishReason: "length" });
  });

  it("without streaming or stop strings, decodes the text once at the end", () => {
    let decodes = 0;
    const counting = { decode: (t: number[]) => (decodes++, letters.decode(t)) };
    const seq = new Sequence(req({ maxTokens: 3 }), counting, { streamText: false });
    expect(feed(seq, "abc").map((g) => g?.text)).toEqual(["", "", ""]);
    expect(decodes).toBe(0);
    expect(seq.finish()).toMatchObject({ tail: "", result: { text: "abc" } });
    expect(decodes).toBe(1);
  });

  it("without a tokenizer, has no text", () => {
    const seq = new Sequence(req({ maxTokens: 2 }), null, { streamText: true });
    expect(feed(seq, "ab")).toEqual([{ token: 0, text: "" }, { token: 1, text: "" }]);
    expect(seq.finish().result).toMatchObject({ tokens: [0, 1], text: "" });
  });

  it("samples float64 rows like float32 rows, and repeats with the same seed", () => {
    const run = (Arr: Float32ArrayConstructor | Float64ArrayConstructor) => {
      const seq = new Sequence(req({ maxTokens: 8, temperature: 1, seed: 7 }), null, { streamText: false });
      const logits = new Arr(V).map((_, i) => Math.sin(i));
      while (!seq.done) seq.accept(logits);
      return seq.out;
    };
    expect(run(Float64Array)).toEqual(run(Float32Array));
  });

  it("keeps reason length when the caller ends it (a cancelled request)", () => {
    const seq = new Sequence(req({ stop: ["q"] }), letters, { streamText: true });
    feed(seq, "ab");
    seq.done = true;
    expect(seq.finish().result).toMatchObject({ tokens: [0, 1], text: "ab", finishReason: "length" });
  });

  it("lowers the logits of tokens already in the completion: by count (frequency) and once (presence)", () => {
    // Logits where "a" leads "b" by 0.5 and "b" leads "c" by 0.5: greedy says "a" each time until penalized.
    const row = () => {
      const r = new Float32Array(V);
      r[0] = 2;
      r[1] = 1.5;
      r[2] = 1;
      return r;
    };
    const run = (r: Partial<SequenceRequest>) => {
      const seq = new Sequence(req({ maxTokens: 4, ...r }), letters, { streamText: false });
      const shared = row();
      while (!seq.done) seq.accept(shared);
      // The row handed in is left as it was (in a batch it is a view into everyone's logits).
      expect(shared).toEqual(row());
      return letters.decode(seq.finish().result.tokens);
    };
    expect(run({})).toBe("aaaa");
    // presence 0.6: once seen, "a" stays at 1.4 however often: b (1.5) once, then a again (b is at 0.9).
    expect(run({ presencePenalty: 0.6 })).toBe("abaa");
    // frequency 0.3: a 2 → 1.7 → 1.4 (b's 1.5 wins) → then a 1.4 vs b 1.2: a.
    expect(run({ frequencyPenalty: 0.3 })).toBe("aaba");
    // A negative penalty favours repeating.
    expect(run({ presencePenalty: -1 })).toBe("aaaa");
  });

  it("adds logit_bias to the chosen tokens at every step, before the penalties", () => {
    const seq = new Sequence(req({ maxTokens: 3, logitBias: { "2": 5, "0": -100 } }), letters, { streamText: false });
    const row = pick(0); // greedy "a" unless biased
    while (!seq.done) seq.accept(row);
    expect(letters.decode(seq.finish().result.tokens)).toBe("ccc");
    expect(row[0]).toBe(1); // the shared row is untouched
    // A ban alone: "a" (the greedy pick) at −100, so the next best, "b" (first of the ties), every time.
    const banned = new Sequence(req({ maxTokens: 3, logitBias: { "0": -100 } }), letters, { streamText: false });
    while (!banned.done) banned.accept(row);
    expect(letters.decode(banned.finish().result.tokens)).toBe("bbb");
  });
});

describe("Sequence logprobs", () => {
  it("reports each emitted token's logprob and alternatives, after logit_bias, and none for a stop token", () => {
    const seq = new Sequence(req({ logprobs: 2, stopTokens: [ids("z")[0]], logitBias: { "2": 0.5 } }), letters, { streamText: true });
    const first = seq.accept(pick(0));
    // Row [1, 0, …, 0] with +0.5 on token 2: softmax over 26 logits.
    const z = Math.log(Math.exp(1) + Math.exp(0.5) + 24);
    expect(first?.logprob?.token).toBe(0);
    expect(first?.logprob?.logprob).toBeCloseTo(1 - z, 6);
    expect(first?.logprob?.top.map((t) => t.token)).toEqual([0, 2]);
    expect(first?.logprob?.top[1].logprob).toBeCloseTo(0.5 - z, 6);
    expect(seq.accept(pick(ids("z")[0]))).toBeNull();
    const { result } = seq.finish();
    expect(result.logprobs).toEqual([first?.logprob]);
  });

  it("keeps results and tokens free of logprobs when not asked", () => {
    const seq = new Sequence(req({ maxTokens: 1 }), letters, { streamText: true });
    expect(seq.accept(pick(0))).toEqual({ token: 0, text: "a" });
    expect(seq.finish().result).not.toHaveProperty("logprobs");
  });
});

describe("Sequence JSON mode", () => {
  // A small vocabulary: each id's bytes; 9 is the stop token.
  const pieces = ["{", "}", '"', "a", ":", "1", " ", "x}", "}}", "<eos>"];
  const vocab = { decode: (ids: number[]) => ids.map((i) => pieces[i]).join(""), tokenBytes: (id: number) => new TextEncoder().encode(pieces[id]), vocabSize: pieces.length, specialTokenIds: new Set<number>() };
  const STOP = 9;
  /** Logits that rank the tokens in `order` first to last. */
  const ranked = (order: number[]) => {
    const row = new Float32Array(pieces.length).fill(-5);
    [...new Set(order)].forEach((t, i) => (row[t] = order.length - i));
    return row;
  };

  it("takes only tokens that continue one JSON object, and ends with reason stop when it closes", () => {
    const seq = new Sequence(req({ maxTokens: 20, json: true, stopTokens: [STOP] }), vocab, { streamText: true });
    // The model would rather stop, close too early or write x}: the grammar leaves the first valid choice.
    const prefs = [
      [STOP, 7, 1, 0], // → {
      [STOP, 8, 7, 1], // → }: an empty object is complete
    ];
    for (const p of prefs) if (!seq.done) seq.accept(ranked(p));
    const { result } = seq.finish();
    expect(result.text).toBe("{}");
    expect(result.finishReason).toBe("stop");
  });

  it("writes a key and value through the grammar's states", () => {
    const seq = new Sequence(req({ maxTokens: 20, json: true, stopTokens: [STOP] }), vocab, { streamText: true });
    const want = [0, 2, 3, 2, 4, 6, 5, 1]; // {"a": 1}
    for (const t of want) {
      // Every step the model's favourite is the stop token, which the grammar refuses until the end.
      if (!seq.done) seq.accept(ranked([STOP, t, ...pieces.map((_, i) => i)]));
    }
    const { result } = seq.finish();
    expect(JSON.parse(result.text)).toEqual({ a: 1 });
    expect(result.finishReason).toBe("stop");
  });

  it("refuses JSON mode without token bytes", () => {
    expect(() => new Sequence(req({ json: true }), letters, { streamText: true })).toThrow(/JSON mode needs/);
  });
});

describe("Sequence tool calls (auto)", () => {
  const pieces = ["hi", "<tool_call>", '{"name": "g"', '{"name": "f", "arguments": {}}', "</tool_call>", "<eos>"];
  const vocab = { decode: (ids: number[]) => ids.map((i) => pieces[i]).join(""), tokenBytes: (id: number) => new TextEncoder().encode(pieces[id]), vocabSize: pieces.length, specialTokenIds: new Set<number>() };
  const STOP = 5;
  const ranked = (order: number[]) => {
    const row = new Float32Array(pieces.length).fill(-5);
    order.forEach((t, i) => (row[t] = order.length - i));
    return row;
  };
  const toolCalls = { jsonSchema: { type: "object", properties: { name: { const: "f" }, arguments: { type: "object", properties: {}, additionalProperties: false } }, required: ["name", "arguments"], additionalProperties: false }, jsonSchemaPath: "tools", opening: "<tool_call>", closing: "</tool_call>", parallel: false };

  it("resamples a call that breaks the tools' grammar, and ends after the call when parallel calls are off", () => {
    const seq = new Sequence(req({ maxTokens: 20, stopTokens: [STOP], toolCalls }), vocab, { streamText: false });
    // The model names a tool that does not exist, then would end inside the call.
    for (const order of [[0], [1], [2, 3], [STOP, 4]]) if (!seq.done) seq.accept(ranked(order));
    const { result } = seq.finish();
    expect(result.text).toBe('hi<tool_call>{"name": "f", "arguments": {}}</tool_call>');
    expect(result.finishReason).toBe("stop");
  });

  it("matches stop strings outside calls only: a stop string cannot cut a call's JSON", () => {
    const run = (stop: string[]) => {
      const seq = new Sequence(req({ maxTokens: 20, stopTokens: [STOP], toolCalls, stop }), vocab, { streamText: true });
      let streamed = "";
      for (const order of [[0], [1], [3], [4]]) if (!seq.done) streamed += seq.accept(ranked(order))?.text ?? "";
      const { tail, result } = seq.finish();
      return { streamed: streamed + tail, result };
    };
    const inCall = run(['"name"', "}}"]);
    expect(inCall.result.text).toBe('hi<tool_call>{"name": "f", "arguments": {}}</tool_call>');
    expect(inCall.streamed).toBe(inCall.result.text);
    expect(run(["i"]).result.text).toBe("h"); // before the call, stop strings work as ever
    // The token that opens a call belongs to it.
    expect(run(["i<"]).result.text).toBe('hi<tool_call>{"name": "f", "arguments": {}}</tool_call>');
  });

  it("ends with reason stop when the text held to the end holds a stop string", () => {
    // Token 1 is "x" and the first byte of a longer character: its text is held until the end.
    const pieces = ["a", "x\uFFFD"];
    const partial = { decode: (ids: number[]) => ids.map((i) => pieces[i]).join("") };
    const seq = new Sequence(req({ stop: ["x"], maxTokens: 2 }), partial, { streamText: true });
    expect([seq.accept(pick(0))?.text, seq.accept(pick(1))?.text]).toEqual(["a", ""]);
    expect(seq.finish()).toMatchObject({ tail: "", result: { text: "a", finishReason: "stop" } });
  });

  it.each([true, false])("decodes a completion after its prompt: SentencePiece's first space stays (streamText %s)", async (streamText) => {
    const d = await mkdtemp(join(tmpdir(), "tuneserve-seq-"));
    await writeFile(join(d, "tokenizer.json"), JSON.stringify(sentencePieceTokenizer("prepend")));
    const tok = (await loadTokenizer(d))!;
    await rm(d, { recursive: true, force: true });
    const prompt = tok.encode("The capital is");
    const answer = tok.encode(" Paris.", { continues: true });
    const run = (r: Partial<SequenceRequest>) => {
      const seq = new Sequence(req({ tokens: prompt, maxTokens: answer.length, ...r }), tok, { streamText });
      const streamed = answer.map((t) => seq.accept(Object.assign(new Float32Array(tok.vocabSize), { [t]: 1 }))?.text ?? "").join("");
      const { tail, result } = seq.finish();
      return { streamed: streamText ? streamed + tail : result.text, text: result.text };
    };
    expect(run({ continuesPrompt: true })).toEqual({ streamed: " Paris.", text: " Paris." });
    // A chat's answer starts a turn: its first space is the decoder's to strip, as Hugging Face's decode does.
    expect(run({})).toEqual({ streamed: "Paris.", text: "Paris." });
  });
});

describe("Sequence hidden tokens (special tokens left out of the text)", () => {
  /** A tokenizer folder from `write`, loaded. */
  const tokenizerOf = async (write: (d: string) => Promise<unknown>) => {
    const d = await mkdtemp(join(tmpdir(), "tuneserve-seq-"));
    await write(d);
    const tok = (await loadTokenizer(d))!;
    await rm(d, { recursive: true, force: true });
    return tok;
  };
  /** Runs `answer` through a sequence, greedily: the text streamed (with the tail) and the result. */
  const run = (tok: NonNullable<Awaited<ReturnType<typeof loadTokenizer>>>, answer: number[], r: Partial<SequenceRequest>, streamText: boolean) => {
    const seq = new Sequence(req({ maxTokens: answer.length, ...r }), tok, { streamText });
    let streamed = "";
    for (const t of answer) if (!seq.done) streamed += seq.accept(Object.assign(new Float32Array(tok.vocabSize), { [t]: 1 }))?.text ?? "";
    const { tail, result } = seq.finish();
    return { streamed: streamed + tail, result };
  };

  it.each([true, false])("leaves special tokens out of byte-level text, also inside a split character; tokens, usage and logprobs keep them (streamText %s)", async (streamText) => {
    const tok = await tokenizerOf((d) => writeByteLevelTokenizer(d));
    const start = tok.encode("<|im_start|>", { addSpecialTokens: true })[0];
    expect(tok.specialTokenIds.has(start)).toBe(true);
    const emoji = tok.encode("😀", { addSpecialTokens: false });
    // <|im_start|> first, between words, and between the bytes of one character.
    const answer = [start, ...tok.encode("Hi ", { addSpecialTokens: false }), start, emoji[0], emoji[1], start, ...emoji.slice(2), ...tok.encode("!", { addSpecialTokens: false })];
    const { streamed, result } = run(tok, answer, { hiddenTokens: tok.specialTokenIds, logprobs: 0 }, streamText);
    expect(result.text).toBe("Hi 😀!");
    if (streamText) expect(streamed).toBe("Hi 😀!");
    expect(result.tokens).toEqual(answer);
    expect(result.completionTokens).toBe(answer.length);
    expect(result.logprobs?.map((l) => l.token)).toEqual(answer);
    // The text is the whole decode leaving them out, as Hugging Face's skip_special_tokens.
    expect(result.text).toBe(tok.decode(answer, { skipSpecialTokens: true }));
    // Without hidden tokens (the engine's CLI), the text keeps them.
    expect(run(tok, answer, {}, streamText).result.text).toBe(tok.decode(answer));
  });

  it.each([true, false])("keeps SentencePiece spaces around a hidden token, in a chat's answer and a completion (streamText %s)", async (streamText) => {
    const tok = await tokenizerOf((d) => writeFile(join(d, "tokenizer.json"), JSON.stringify(sentencePieceTokenizer("prepend"))));
    const prompt = tok.encode("The capital is");
    const [hello, world] = [tok.encode(" Hello", { continues: true }), tok.encode(" world", { continues: true })];
    const BOS = 1;
    const answer = [BOS, ...hello, BOS, ...world, BOS];
    const hidden = { hiddenTokens: tok.specialTokenIds };
    expect(run(tok, answer, { tokens: prompt, continuesPrompt: true, ...hidden }, streamText)).toMatchObject({ streamed: streamText ? " Hello world" : "", result: { text: " Hello world" } });
    // A chat's answer starts a turn: its first space is the decoder's to strip, hidden token before it or not.
    expect(run(tok, answer, hidden, streamText).result.text).toBe("Hello world");
    if (streamText) expect(run(tok, answer, hidden, streamText).streamed).toBe("Hello world");
  });

  it.each([true, false])("never writes banned text (tool_choice none's <tool_call) split by a hidden token (streamText %s)", async (streamText) => {
    const tok = await tokenizerOf((d) => writeByteLevelTokenizer(d));
    const start = tok.encode("<|im_start|>")[0];
    const answer = [...tok.encode("<tool_"), start, ...tok.encode("call>{}")];
    const { streamed, result } = run(tok, answer, { hiddenTokens: tok.specialTokenIds, bannedText: "<tool_call" }, streamText);
    expect(result.text).not.toContain("<tool_call");
    expect(result.text.startsWith("<tool_")).toBe(true);
    if (streamText) expect(streamed).toBe(result.text);
  });

  it("gives each token's offset in the returned text: hidden tokens and a split character's bytes where their text would be (completions' text_offset)", async () => {
    const tok = await tokenizerOf((d) => writeByteLevelTokenizer(d));
    const start = tok.encode("<|im_start|>")[0];
    const emoji = tok.encode("😀");
    const answer = [...tok.encode("Hi"), start, ...tok.encode(" é"), emoji[0], start, ...emoji.slice(1), ...tok.encode("!"), start];
    const utf8 = new TextDecoder("utf-8", { fatal: true });
    /** The text a token writes alone: none when hidden or part of a character. */
    const visible = (t: number) => {
      if (tok.specialTokenIds.has(t)) return "";
      try {
        return utf8.decode(tok.tokenBytes(t));
      } catch {
        return "";
      }
    };
    const offsets = (streamText: boolean) => {
      const { result } = run(tok, answer, { tokens: tok.encode("Say"), continuesPrompt: true, hiddenTokens: tok.specialTokenIds, logprobs: 0 }, streamText);
      expect(result.text).toBe("Hi é😀!");
      const at = result.logprobs!.map((l) => l.textOffset!);
      answer.forEach((t, i) => expect(result.text.slice(at[i]).startsWith(visible(t))).toBe(true));
      return at;
    };
    // "é" is two bytes, both at 3 (where the character starts); 😀 (four bytes, two UTF-16 units) at 4; "!" at 6.
    const want = [0, 1, 2, 2, 3, 3, 4, 4, 4, 4, 4, 6, 7];
    expect(offsets(true)).toEqual(want);
    expect(offsets(false)).toEqual(want);
    // A U+FFFD the model wrote (its three bytes) and a lead byte that "b" breaks: the tokens after sit after them.
    for (const streamText of [true, false]) {
      const { result } = run(tok, [0x61, 0xef, 0xbf, 0xbd, 0x7c, 0xf0, 0x62], { tokens: tok.encode("Say"), continuesPrompt: true, logprobs: 0 }, streamText);
      expect(result.text).toBe("a\uFFFD|\uFFFDb");
      expect(result.logprobs!.map((l) => l.textOffset)).toEqual([0, 1, 1, 1, 2, 3, 4]);
    }
  });

  it("places a character's bytes at its start also when a token writes text before them (' ' + a first byte), streamed or not", async () => {
    // Byte-level BPE with one merge: " " and the first byte of 日 (E6) as one token, as real vocabularies have.
    const tok = await tokenizerOf(async (d) => {
      await writeByteLevelTokenizer(d);
      const json = JSON.parse(await readFile(join(d, "tokenizer.json"), "utf8"));
      json.model.vocab["Ġæ"] = 260;
      json.model.merges = ["Ġ æ"];
      await writeFile(join(d, "tokenizer.json"), JSON.stringify(json));
    });
    const answer = tok.encode("a 日", { addSpecialTokens: false });
    expect(answer).toEqual([0x61, 260, 0x97, 0xa5]);
    for (const streamText of [true, false]) {
      const { result } = run(tok, answer, { tokens: tok.encode("Say"), continuesPrompt: true, logprobs: 0 }, streamText);
      expect(result.text).toBe("a 日");
      expect(result.logprobs!.map((l) => l.textOffset)).toEqual([0, 1, 2, 2]);
    }
  });

  it("puts the tokens a stop string cut off at the text's end", async () => {
    const tok = await tokenizerOf((d) => writeByteLevelTokenizer(d));
    const answer = tok.encode("ab\n\ncd");
    for (const streamText of [true, false]) {
      const { result } = run(tok, answer, { stop: ["\n\n"], logprobs: 0 }, streamText);
      expect(result.text).toBe("ab");
      expect(result.logprobs!.map((l) => l.textOffset)).toEqual([0, 1, 2, 2]);
    }
  });

  it("stops at a hidden token whose text is a stop string (stop: [\"<|im_end|>\"]), streamed or not", async () => {
    const tok = await tokenizerOf((d) => writeByteLevelTokenizer(d));
    const end = tok.encode("<|im_end|>")[0];
    expect(tok.specialTokenIds.has(end)).toBe(true);
    const answer = [...tok.encode("Hi"), end, ...tok.encode(" more")];
    for (const streamText of [true, false]) {
      // "Hi" is held back as the start of "Hi!"; the stop token releases it, as text before a stop string.
      const { streamed, result } = run(tok, answer, { hiddenTokens: tok.specialTokenIds, stop: ["Hi!", "<|im_end|>"], logprobs: 0 }, streamText);
      expect(result).toMatchObject({ text: "Hi", finishReason: "stop", tokens: [...tok.encode("Hi"), end] });
      expect(streamed).toBe("Hi");
      expect(result.logprobs!.map((l) => l.textOffset)).toEqual([0, 1, 2]);
    }
    // Only a stop string that is all of its text: one that goes on past it, or a part of it, is matched on the text.
    for (const stop of ["<|im_end|>!", "im_end"]) {
      const { result } = run(tok, answer, { hiddenTokens: tok.specialTokenIds, stop: [stop] }, true);
      expect(result).toMatchObject({ text: "Hi more", finishReason: "length" });
    }
  });

  it("matches a stop string that holds a hidden token's text and more on the text with hidden tokens' text in place, streamed or not", async () => {
    const tok = await tokenizerOf((d) => writeByteLevelTokenizer(d));
    const [start, end] = [tok.encode("<|im_start|>")[0], tok.encode("<|im_end|>")[0]];
    const answer = [...tok.encode("Hi"), end, ...tok.encode(" more")];
    for (const streamText of [true, false]) {
      // "i" is held back as the start of "i<|im_end|>"; the hidden token completes it: cut before "i".
      const { streamed, result } = run(tok, answer, { hiddenTokens: tok.specialTokenIds, stop: ["i<|im_end|>"], logprobs: 0 }, streamText);
      expect(result).toMatchObject({ text: "H", finishReason: "stop", tokens: [...tok.encode("Hi"), end] });
      expect(streamed).toBe("H");
      expect(result.logprobs!.map((l) => l.textOffset)).toEqual([0, 1, 1]);
      // Text after the token: the stop ends within " more", the text is cut before the hidden token.
      const after = run(tok, answer, { hiddenTokens: tok.specialTokenIds, stop: ["<|im_end|> m"] }, streamText);
      expect(after.result).toMatchObject({ text: "Hi", finishReason: "stop", tokens: [...tok.encode("Hi"), end, ...tok.encode(" m")] });
      expect(after.streamed).toBe("Hi");
    }
    // Another hidden token between is text of its own there: "i<|im_end|>" is not in "Hi<|im_start|><|im_end|>…".
    const between = run(tok, [...tok.encode("Hi"), start, end, ...tok.encode("!")], { hiddenTokens: tok.specialTokenIds, stop: ["i<|im_end|>"] }, true);
    expect(between.result).toMatchObject({ text: "Hi!", finishReason: "length" });
  });

  it("matches stop strings on the text without the hidden tokens", async () => {
    const tok = await tokenizerOf((d) => writeByteLevelTokenizer(d));
    const start = tok.encode("<|im_start|>")[0];
    const answer = [...tok.encode("Hi"), start, ...tok.encode(" there")];
    for (const streamText of [true, false]) {
      const { streamed, result } = run(tok, answer, { hiddenTokens: tok.specialTokenIds, stop: ["i t"] }, streamText);
      expect(result).toMatchObject({ text: "H", finishReason: "stop" });
      expect(streamed).toBe("H");
    }
  });
});
