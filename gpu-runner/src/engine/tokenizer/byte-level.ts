// Writes a tiny Hugging Face tokenizer: one token per UTF-8 byte (byte-level BPE with no merges) plus
// ChatML special tokens, so any text round-trips exactly. Used by the built-in small model and in tests.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The special tokens every byte-level tokenizer has, in id order from 256. */
export const BYTE_LEVEL_SPECIAL_TOKENS = ["<|bos|>", "<|eos|>", "<|im_start|>", "<|im_end|>"] as const;

/**
 * ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per message; the generation prompt opens an assistant turn.
 * With `tools`, a system turn lists them first (one JSON per line within <tools>); an assistant turn's tool
 * calls follow its content, each `{"name": …, "arguments": …}` within <tool_call>; a tool's answer is a `tool`
 * turn within <tool_response>. Without tools, a chat renders as it always has.
 */
export const CHATML_TEMPLATE =
  "{%- if tools -%}" +
  "{{ '<|im_start|>system\\n# Tools\\n\\nYou may call one of these functions:\\n<tools>' }}" +
  "{%- for tool in tools -%}{{ '\\n' + (tool | tojson) }}{%- endfor -%}" +
  "{{ '\\n</tools>\\n\\nWrite a call as a JSON object with its name and arguments within <tool_call></tool_call>.<|im_end|>\\n' }}" +
  "{%- endif -%}" +
  "{%- for message in messages -%}" +
  "{%- if message['role'] == 'tool' -%}" +
  "{{ '<|im_start|>tool\\n<tool_response>\\n' + message['content'] + '\\n</tool_response><|im_end|>\\n' }}" +
  "{%- elif message['tool_calls'] -%}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] }}" +
  "{%- for call in message['tool_calls'] -%}" +
  "{{ '<tool_call>\\n{\"name\": ' + (call['function']['name'] | tojson) + ', \"arguments\": ' + (call['function']['arguments'] | tojson) + '}\\n</tool_call>' }}" +
  "{%- endfor -%}" +
  "{{ '<|im_end|>\\n' }}" +
  "{%- else -%}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{%- endif -%}" +
  "{%- endfor -%}" +
  "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}";

export type ByteLevelTokenizerOptions = {
  /** More special tokens after the four standard ones (ids continue from 260). */
  extraSpecialTokens?: string[];
};

export type ByteLevelTokenizerInfo = {
  /** Number of token ids (256 bytes + specials); a model's vocab_size must be at least this. */
  vocabSize: number;
  /** Id of each special token by its text. */
  specialTokenIds: Record<string, number>;
  bosTokenId: number;
  eosTokenId: number;
  /** Ids that end generation: `<|eos|>` and `<|im_end|>` (ChatML turns end with the latter). */
  eosTokenIds: number[];
};

/**
 * GPT-2's byte → printable character table: bytes that are printable Latin-1 map to themselves, the
 * others to 256, 257, … in byte order. Hugging Face's ByteLevel pre-tokenizer and decoder use this exact
 * table, so the vocabulary has to be spelled with it.
 */
export function byteToUnicode(): string[] {
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCodePoint(printable ? b : next++);
  }
  return table;
}

/** Builds the tokenizer.json object (no file I/O). */
export function byteLevelTokenizerJson(specials: string[]): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteToUnicode().forEach((ch, b) => (vocab[ch] = b));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, i) => ({
      id: 256 + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

/**
 * Writes `tokenizer.json`, `tokenizer_config.json` (ChatML `chat_template`, bos/eos) and
 * `generation_config.json` (if absent: eos ids for `<|eos|>` and `<|im_end|>`) into `dir`.
 * No merges: every byte is one token, which keeps the vocabulary at 260 and makes encode→decode exact.
 */
export async function writeByteLevelTokenizer(dir: string, opts: ByteLevelTokenizerOptions = {}): Promise<ByteLevelTokenizerInfo> {
  const specials = [...BYTE_LEVEL_SPECIAL_TOKENS, ...(opts.extraSpecialTokens ?? [])];
  const dup = specials.find((s, i) => specials.indexOf(s) !== i);
  if (dup !== undefined) throw new Error(`writeByteLevelTokenizer: special token ${JSON.stringify(dup)} is listed twice`);
  const empty = specials.findIndex((s) => s.length === 0);
  if (empty >= 0) throw new Error(`writeByteLevelTokenizer: extraSpecialTokens has an empty token; remove it`);

  const specialTokenIds: Record<string, number> = {};
  specials.forEach((s, i) => (specialTokenIds[s] = 256 + i));
  const info: ByteLevelTokenizerInfo = {
    vocabSize: 256 + specials.length,
    specialTokenIds,
    bosTokenId: specialTokenIds["<|bos|>"],
    eosTokenId: specialTokenIds["<|eos|>"],
    eosTokenIds: [specialTokenIds["<|eos|>"], specialTokenIds["<|im_end|>"]],
  };
  const config = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: "<|bos|>",
    eos_token: "<|eos|>",
    pad_token: "<|eos|>",
    unk_token: null,
    additional_special_tokens: specials.filter((s) => s !== "<|bos|>" && s !== "<|eos|>"),
    add_bos_token: false,
    add_eos_token: false,
    // Cleanup would turn " ." into "." on decode and break exact round trips.
    clean_up_tokenization_spaces: false,
    model_max_length: 1_000_000,
    chat_template: CHATML_TEMPLATE,
  };
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "tokenizer.json"), JSON.stringify(byteLevelTokenizerJson(specials), null, 2) + "\n");
  await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify(config, null, 2) + "\n");
  const genPath = join(dir, "generation_config.json");
  const gen = { bos_token_id: info.bosTokenId, eos_token_id: info.eosTokenIds, pad_token_id: info.eosTokenId };
  // "wx" fails if the file exists: a model writer's own generation_config.json wins.
  await writeFile(genPath, JSON.stringify(gen, null, 2) + "\n", { flag: "wx" }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "EEXIST") throw err;
  });
  return info;
}
