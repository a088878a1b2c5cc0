// loadTokenizer and createDecodeStream against small hand-written Hugging Face tokenizer folders.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDecodeStream, loadTokenizer, type TextTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { writeByteLevelTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/byte-level.js";
import { sentencePieceTokenizer } from "../../../helpers/sentencepiece.js";

/** A SentencePiece/Llama-2-style tokenizer: ▁ for spaces, byte fallback, BOS added by the post-processor. */
const LLAMA_STYLE = sentencePieceTokenizer("prepend", { "<unk>": 0, "<s>": 1, "</s>": 2, "▁Hello": 3, "▁world": 4, "!": 5, "<0xF0>": 6, "<0x9F>": 7, "<0x98>": 8, "<0x80>": 9, "▁": 10 });
// A Llama-2-like template: uses bos_token/eos_token variables and raise_exception.
const LLAMA_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]" +
  "{% elif m['role'] == 'assistant' %} {{ m['content'] }}{{ eos_token }}{% else %}{{ raise_exception('unknown role ' + m['role']) }}{% endif %}{% endfor %}";

// Mistral-7B-Instruct-v0.1's template.
const MISTRAL_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}" +
  "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

const dirs: string[] = [];
async function folder(files: Record<string, unknown>): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "tuneserve-tok-"));
  dirs.push(d);
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(d, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return d;
}
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe("loadTokenizer", () => {
  let llama: TextTokenizer;
  beforeAll(async () => {
    const d = await folder({
      "tokenizer.json": LLAMA_STYLE,
      "tokenizer_config.json": { bos_token: { content: "<s>", lstrip: false }, eos_token: "</s>", chat_template: LLAMA_TEMPLATE },
      "generation_config.json": { eos_token_id: [2, 5] },
    });
    llama = (await loadTokenizer(d))!;
  });

  it("returns null for a folder without tokenizer.json", async () => {
    expect(await loadTokenizer(await folder({ "config.json": {} }))).toBeNull();
  });

  it("reads bos/eos (string or AddedToken object) and generation_config eos ids", () => {
    expect(llama.bosTokenId).toBe(1);
    expect(llama.eosTokenIds.sort()).toEqual([2, 5]);
    expect(llama.vocabSize).toBe(11);
  });

  it("ends generation at config.json's eos ids too when generation_config.json is absent (Llama 3: <|eot_id|> beside <|end_of_text|>)", async () => {
    const d = await folder({ "tokenizer.json": LLAMA_STYLE, "tokenizer_config.json": { eos_token: "</s>" }, "config.json": { eos_token_id: [2, 5] } });
    expect((await loadTokenizer(d))!.eosTokenIds.sort()).toEqual([2, 5]);
  });

  it("ends generation at the template's end of turn where the folder's end ids leave it out (Qwen2 base: <|endoftext|> only)", async () => {
    const d = await mkdtemp(join(tmpdir(), "tuneserve-tok-"));
    dirs.push(d);
    // The base model's own generation_config.json (kept by the writer): its end of text only.
    await writeFile(join(d, "generation_config.json"), JSON.stringify({ eos_token_id: 257 }));
    const { specialTokenIds } = await writeByteLevelTokenizer(d);
    const tok = (await loadTokenizer(d))!;
    expect(tok.eosTokenIds).toEqual([specialTokenIds["<|eos|>"], specialTokenIds["<|im_end|>"]]);
    // Llama 2's " </s>": the eos already, listed once.
    expect(llama.eosTokenIds.sort()).toEqual([2, 5]);
  });

  it("gives each token's own bytes: ▁ as a space, <0xNN> pieces as one byte, added tokens as their text", () => {
    expect([...llama.tokenBytes(3)]).toEqual([...new TextEncoder().encode(" Hello")]);
    expect([...llama.tokenBytes(6)]).toEqual([0xf0]);
    expect([...llama.tokenBytes(2)]).toEqual([...new TextEncoder().encode("</s>")]);
    // The four byte tokens of 😀 join into the character.
    expect(new TextDecoder().decode(Uint8Array.from([6, 7, 8, 9].flatMap((id) => [...llama.tokenBytes(id)])))).toBe("😀");
  });

  it("adds BOS through the post-processor unless addSpecialTokens is false", () => {
    expect(llama.encode("Hello")[0]).toBe(1);
    expect(llama.encode("Hello", { addSpecialTokens: false })[0]).not.toBe(1);
  });

  it("adds no second BOS to a text that starts with BOS's string (a chat rendered by the client)", () => {
    const once = llama.encode("<s>Hello", { addSpecialTokens: false });
    expect(once[0]).toBe(1);
    expect(llama.encode("<s>Hello")).toEqual(once);
    expect(llama.encode("<s><s>Hello")).toEqual([1, ...once]); // two as written
  });

  it("decodes with and without special tokens", () => {
    expect(llama.decode([1, 3, 4, 5])).toBe("<s> Hello world!");
    expect(llama.decode([1, 3, 4, 5], { skipSpecialTokens: true })).toBe("Hello world!");
    expect(llama.decode([])).toBe("");
  });

  it("renders a chat template with bos/eos variables and surfaces raise_exception", () => {
    const msgs = [{ role: "user", content: "Hi" }, { role: "assistant", content: "Yo" }];
    expect(llama.applyChatTemplate(msgs)).toBe("<s>[INST] Hi [/INST] Yo</s>");
    expect(() => llama.applyChatTemplate([{ role: "tool", content: "x" }])).toThrow(/unknown role tool/);
  });

  it("says a template's raise_exception as an error of messages (the runner's 400 names the param)", async () => {
    const mistral = (await loadTokenizer(await folder({ "tokenizer.json": sentencePieceTokenizer("prepend"), "tokenizer_config.json": { bos_token: "<s>", eos_token: "</s>", chat_template: MISTRAL_TEMPLATE } })))!;
    const twoUsers = [{ role: "user", content: "a" }, { role: "user", content: "b" }];
    expect(() => mistral.encodeChat(twoUsers, { addGenerationPrompt: true })).toThrow(
      /^messages: the model's chat template refuses them: Conversation roles must alternate user\/assistant\/user\/assistant\/...$/,
    );
    expect(() => llama.applyChatTemplate([{ role: "tool", content: "x" }])).toThrow(/^messages: the model's chat template refuses them: unknown role tool$/);
  });

  it("picks the 'default' entry of a list-valued chat_template and reads chat_template.jinja", async () => {
    const listed = await folder({
      "tokenizer.json": LLAMA_STYLE,
      "tokenizer_config.json": { chat_template: [{ name: "tool_use", template: "T" }, { name: "default", template: "D{{ messages|length }}" }] },
    });
    expect((await loadTokenizer(listed))!.applyChatTemplate([{ role: "user", content: "a" }])).toBe("D1");
    const file = await folder({ "tokenizer.json": LLAMA_STYLE, "chat_template.jinja": "J{% if add_generation_prompt %}+{% endif %}" });
    expect((await loadTokenizer(file))!.applyChatTemplate([], { addGenerationPrompt: true })).toBe("J+");
    // An empty chat_template (string or list) is no template: chat_template.jinja is read, as the API assumes at registration.
    for (const empty of ["", []]) {
      const beside = await folder({ "tokenizer.json": LLAMA_STYLE, "tokenizer_config.json": { chat_template: empty }, "chat_template.jinja": "J" });
      expect((await loadTokenizer(beside))!.applyChatTemplate([])).toBe("J");
    }
  });

  it("names the file and the fix when there is no chat template or a file is broken", async () => {
    const none = (await loadTokenizer(await folder({ "tokenizer.json": LLAMA_STYLE })))!;
    expect(() => none.applyChatTemplate([])).toThrow(/tokenizer_config.json: no chat_template; add one/);
    await expect(loadTokenizer(await folder({ "tokenizer.json": "{oops" }))).rejects.toThrow(/tokenizer.json: invalid JSON/);
    await expect(loadTokenizer(await folder({ "tokenizer.json": LLAMA_STYLE, "tokenizer_config.json": { eos_token: 7 } }))).rejects.toThrow(
      /tokenizer_config.json: field eos_token/,
    );
  });
});

describe("add_bos_token / add_eos_token in tokenizer_config.json (transformers' update_post_processor)", () => {
  const config = { bos_token: "<s>", eos_token: "</s>", chat_template: LLAMA_TEMPLATE };
  const load = async (flags: Record<string, unknown>, tokenizer: unknown = LLAMA_STYLE) =>
    (await loadTokenizer(await folder({ "tokenizer.json": tokenizer, "tokenizer_config.json": { ...config, ...flags } })))!;
  const text = "Hi there!";

  it("drops the post-processor's BOS when add_bos_token is false", async () => {
    const tok = await load({ add_bos_token: false, add_eos_token: false });
    const plain = tok.encode(text, { addSpecialTokens: false });
    expect(tok.encode(text)).toEqual(plain);
    // A BOS the text spells is the one it has.
    expect(tok.encode(`<s>${text}`)).toEqual(tok.encode(`<s>${text}`, { addSpecialTokens: false }));
    expect(tok.encode(`<s>${text}`).filter((t) => t === 1)).toEqual([1]);
  });

  it("adds EOS after the text when add_eos_token is true, and keeps the post-processor's BOS where add_bos_token is not said", async () => {
    const tok = await load({ add_eos_token: true });
    const plain = tok.encode(text, { addSpecialTokens: false });
    expect(tok.encode(text)).toEqual([1, ...plain, 2]);
    // No second BOS before a text that starts with BOS's string, EOS or not.
    expect(tok.encode(`<s>${text}`)).toEqual([...tok.encode(`<s>${text}`, { addSpecialTokens: false }), 2]);
    expect(tok.encode(`<s>${text}`).filter((t) => t === 1)).toEqual([1]);
  });

  it("adds BOS that the post-processor lacks when add_bos_token is true; none when there is no bos_token", async () => {
    const bare = { ...LLAMA_STYLE, post_processor: null };
    const plain = (await load({}, bare)).encode(text);
    expect(plain[0]).not.toBe(1);
    expect((await load({ add_bos_token: true }, bare)).encode(text)).toEqual([1, ...plain]);
    const noBos = (await loadTokenizer(await folder({ "tokenizer.json": bare, "tokenizer_config.json": { eos_token: "</s>", add_bos_token: true } })))!;
    expect(noBos.encode(text)).toEqual(plain);
    // A config that names no bos_token keeps the post-processor's BOS while adding EOS.
    const unnamed = (await loadTokenizer(await folder({ "tokenizer.json": LLAMA_STYLE, "tokenizer_config.json": { eos_token: "</s>", add_bos_token: true, add_eos_token: true } })))!;
    expect(unnamed.encode(text)).toEqual([1, ...plain, 2]);
  });

  it("leaves a chat as its template writes it: one BOS, no EOS added after the generation prompt", async () => {
    for (const flags of [{ add_bos_token: true, add_eos_token: true }, { add_bos_token: false, add_eos_token: true }]) {
      const tok = await load(flags, { ...LLAMA_STYLE, post_processor: null });
      const ids = tok.encodeChat([{ role: "user", content: text }], { addGenerationPrompt: true });
      expect(ids.filter((t) => t === 1)).toEqual([1]);
      expect(ids[0]).toBe(1);
      expect(ids.at(-1)).not.toBe(2);
    }
  });
});

describe("encodeChat with SentencePiece", () => {
  it.each(["prepend", "metaspace"] as const)("encodes a special token's string in a message as the text it is, no space put inside it (%s)", async (style) => {
    const tok = (await loadTokenizer(await folder({ "tokenizer.json": sentencePieceTokenizer(style), "tokenizer_config.json": { bos_token: "<s>", eos_token: "</s>", chat_template: MISTRAL_TEMPLATE } })))!;
    const ids = tok.encodeChat([{ role: "user", content: "a</s>b <s>c" }], { addGenerationPrompt: true });
    // The template's <s> only; the message's markers are characters.
    expect(ids.filter((id) => id === 1 || id === 2)).toEqual([1]);
    const inst = style === "prepend" ? " [INST]" : "[INST]"; // legacy Llama 2 puts ▁ after every special token
    expect(tok.decode(ids)).toBe(`<s>${inst} a</s>b <s>c [/INST]`);
    const plain = tok.encodeChat([{ role: "user", content: "a/s>b s>c" }], { addGenerationPrompt: true });
    expect(ids.length).toBe(plain.length + 2);
  });
});

describe("Llama 3's tokenizer folder", () => {
  // Meta-Llama-3-8B-Instruct's template; its post-processor adds <|begin_of_text|> as the template does.
  const LLAMA3_TEMPLATE =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}" +
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
  const MARKERS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];
  let tok: TextTokenizer;
  let id: Record<string, number>;
  beforeAll(async () => {
    const d = await mkdtemp(join(tmpdir(), "tuneserve-tok-"));
    dirs.push(d);
    id = (await writeByteLevelTokenizer(d, { extraSpecialTokens: MARKERS })).specialTokenIds;
    const json = JSON.parse(await readFile(join(d, "tokenizer.json"), "utf8"));
    const bos = { id: "<|begin_of_text|>", ids: [id["<|begin_of_text|>"]], tokens: ["<|begin_of_text|>"] };
    json.post_processor = { type: "TemplateProcessing", single: [{ SpecialToken: { id: bos.id, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [], special_tokens: { [bos.id]: bos } };
    await writeFile(join(d, "tokenizer.json"), JSON.stringify(json));
    await writeFile(join(d, "tokenizer_config.json"), JSON.stringify({ bos_token: "<|begin_of_text|>", eos_token: "<|end_of_text|>", chat_template: LLAMA3_TEMPLATE, clean_up_tokenization_spaces: true }));
    await writeFile(join(d, "generation_config.json"), JSON.stringify({ eos_token_id: [id["<|end_of_text|>"], id["<|eot_id|>"]] }));
    tok = (await loadTokenizer(d))!;
  });

  it("renders a chat with one <|begin_of_text|>, the system turn and the generation prompt; ends at <|eot_id|> or <|end_of_text|>", () => {
    const ids = tok.encodeChat([{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }], { addGenerationPrompt: true });
    expect(ids.filter((t) => t === id["<|begin_of_text|>"])).toEqual([id["<|begin_of_text|>"]]);
    expect(ids[0]).toBe(id["<|begin_of_text|>"]);
    expect(tok.decode(ids)).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    expect(tok.eosTokenIds.sort()).toEqual([id["<|end_of_text|>"], id["<|eot_id|>"]].sort());
    // A prompt the client rendered keeps its one <|begin_of_text|>.
    expect(tok.encode(tok.applyChatTemplate([{ role: "user", content: "Hi" }]))).toEqual(tok.encodeChat([{ role: "user", content: "Hi" }]));
  });
});

describe("createDecodeStream", () => {
  it("keeps SentencePiece word spaces that per-token decoding would lose", async () => {
    const tok = (await loadTokenizer(await folder({ "tokenizer.json": LLAMA_STYLE })))!;
    const ids = [3, 4, 4, 5];
    expect(ids.map((id) => tok.decode([id])).join("")).toBe("Helloworldworld!"); // the naive way is wrong
    const s = createDecodeStream(tok);
    expect(ids.map((id) => s.push(id))).toEqual(["Hello", " world", " world", "!"]);
  });

  it("holds byte-fallback pieces until the UTF-8 character is complete", async () => {
    const tok = (await loadTokenizer(await folder({ "tokenizer.json": LLAMA_STYLE })))!;
    const s = createDecodeStream(tok);
    expect([3, 6, 7, 8, 9, 5].map((id) => s.push(id))).toEqual(["Hello", "", "", "", "😀", "!"]);
  });

  it("streams byte-level text exactly: the pieces join to the full decode and no piece has U+FFFD", async () => {
    const d = await mkdtemp(join(tmpdir(), "tuneserve-tok-"));
    dirs.push(d);
    await writeByteLevelTokenizer(d);
    const tok = (await loadTokenizer(d))!;
    const text = "naïve 😀 café\n日本語 👨‍👩‍👧 end";
    const s = createDecodeStream(tok);
    const pieces = tok.encode(text).map((id) => s.push(id));
    expect(pieces.join("")).toBe(text);
    for (const p of pieces) expect(p).not.toContain("\uFFFD");
    expect(pieces.filter((p) => p === "").length).toBeGreaterThan(0); // multi-byte chars were held back
  });

  it("decodes the model's text as written, also where tokenizer_config asks for clean_up_tokenization_spaces (Llama 3)", async () => {
    const d = await mkdtemp(join(tmpdir(), "tuneserve-tok-"));
    dirs.push(d);
    await writeByteLevelTokenizer(d);
    const cfg = JSON.parse(await readFile(join(d, "tokenizer_config.json"), "utf8"));
    await writeFile(join(d, "tokenizer_config.json"), JSON.stringify({ ...cfg, clean_up_tokenization_spaces: true }));
    const tok = (await loadTokenizer(d))!;
    const text = "if (x != y) { ok . } isn 't";
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(tok.decode(ids)).toBe(text);
    const s = createDecodeStream(tok);
    expect(ids.map((id) => s.push(id)).join("") + s.flush()).toBe(text);
    expect(new TextDecoder().decode(Uint8Array.from(ids.flatMap((id) => [...tok.tokenBytes(id)])))).toBe(text);
  });

  it("holds back only an unfinished character: a U+FFFD the model wrote, or bytes that cannot form one, go out at once", async () => {
    const d = await mkdtemp(join(tmpdir(), "tuneserve-tok-"));
    dirs.push(d);
    await writeByteLevelTokenizer(d);
    const tok = (await loadTokenizer(d))!;
    const s = createDecodeStream(tok);
    // U+FFFD written as its three bytes, then a lone continuation byte, then a lead byte that "a" breaks.
    expect([0xef, 0xbf, 0xbd, 0x80, 0xf0, 0x61].map((id) => s.push(id))).toEqual(["", "", "\uFFFD", "\uFFFD", "", "\uFFFDa"]);
    // Each token's place in the text: a character's bytes at its start, a token after broken bytes after their U+FFFD.
    const t = createDecodeStream(tok);
    const offsets = [0x61, 0xef, 0xbf, 0xbd, 0x7c, 0xf0, 0x62].map((id) => (t.push(id), t.lastOffset));
    expect(offsets).toEqual([0, 1, 1, 1, 2, 3, 4]);
  });

  it("flush releases an unfinished character as U+FFFD", async () => {
    const d = await mkdtemp(join(tmpdir(), "tuneserve-tok-"));
    dirs.push(d);
    await writeByteLevelTokenizer(d);
    const s = createDecodeStream((await loadTokenizer(d))!);
    expect([0x61, 0xf0, 0x9f].map((id) => s.push(id))).toEqual(["a", "", ""]);
    expect(s.flush()).toBe("\uFFFD");
    expect(s.flush()).toBe("");
  });
});
