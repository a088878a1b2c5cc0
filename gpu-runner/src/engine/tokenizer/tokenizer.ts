// Loads a model folder's Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) with its chat
// template; token streams are decoded incrementally by decode-stream.ts.
import { absentCharacter, defuse, mapStrings, stringsOf, withoutPrefixSpace } from "./plain-text.js";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import { z } from "zod";
import { tokenBytesReader } from "./token-bytes.js";
import { turnEndToken } from "./turn-end.js";
import { specialsToAdd, templateProcessing, type AddedSpecials, type Special } from "./post-processor.js";
import { toolCallFormatOf, writesCallIds, type ToolCallFormat } from "./tool-call-format.js";
import { nineCharacterCallIds } from "./call-ids.js";

export { CONTEXT_TOKENS, createDecodeStream, decodeAfter } from "./decode-stream.js";
export { toolCallFormatOf, type ToolCallFormat } from "./tool-call-format.js";

/** A chat message as chat templates read it; an assistant's tool calls carry their arguments as an object where they parse. */
export type ChatMessage = { role: string; content: string; tool_calls?: unknown[]; tool_call_id?: string };
/** Options of a rendering: the generation prompt, and the tools (OpenAI's `tools`) templates list for the model. */
export type ChatOptions = { addGenerationPrompt?: boolean; tools?: unknown[] };

/** The tokenizer the engine uses: text ↔ ids, chat templating, and the ids that end generation. */
export type TextTokenizer = {
  /**
   * Text → ids. `addSpecialTokens` (default true, as in Hugging Face) runs the post-processor, e.g. adds BOS (not
   * to a text that starts with it), or what tokenizer_config's add_bos_token / add_eos_token ask for (post-processor.ts). `continues`: the text goes on from text before it (a completion after its
   * prompt), so SentencePiece puts no "▁" before it; implies no special tokens added.
   */
  encode(text: string, opts?: { addSpecialTokens?: boolean; continues?: boolean }): number[];
  /** Ids → text. Special tokens are kept unless `skipSpecialTokens`. */
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** Renders messages with the folder's chat template; encode the result with `addSpecialTokens: false`. */
  applyChatTemplate(messages: ChatMessage[], opts?: ChatOptions): string;
  /** Chat template rendered and encoded without adding special tokens twice (the template writes its own). */
  encodeChat(messages: ChatMessage[], opts?: ChatOptions): number[];
  /**
   * Ids that end generation: tokenizer_config's eos_token, generation_config.json's and config.json's
   * eos_token_id(s), and the special token the chat template ends an assistant turn with (turn-end.ts).
   */
  eosTokenIds: number[];
  bosTokenId: number | null;
  /** One more than the largest token id (added tokens included). */
  vocabSize: number;
  /**
   * At least as many bytes as any one token stands for: the longest vocabulary entry's UTF-8 length (an entry
   * spells its bytes in at least as many: byte-level BPE's one character per byte, "▁" for a space, "<0x0A>").
   */
  longestTokenBytes: number;
  /** The bytes token `id` stands for (part of a UTF-8 character, for some); see token-bytes.ts. */
  tokenBytes(id: number): Uint8Array;
  /** Ids of the added tokens marked special (BOS, EOS, chat markers, …). */
  specialTokenIds: ReadonlySet<number>;
  /** How the chat template writes an assistant's tool calls (tool-call-format.ts), or null for a format this server cannot read. */
  toolCallFormat: ToolCallFormat | null;
  /** Whether the chat template writes each call's id (`[CALL_ID]id`, Mistral's newer format; tool-call-format.ts). */
  writesCallIds: boolean;
};

// Special tokens appear as plain strings or as AddedToken objects ({"content": ...}).
const tokenField = z.union([z.string(), z.object({ content: z.string() }).loose(), z.null()]).optional();
const templateField = z.union([z.string(), z.array(z.object({ name: z.string(), template: z.string() }))]).optional();

const tokenizerConfigSchema = z
  .object({
    bos_token: tokenField,
    eos_token: tokenField,
    pad_token: tokenField,
    unk_token: tokenField,
    chat_template: templateField,
    // transformers' flags for the special tokens an encoding adds (post-processor.ts).
    add_bos_token: z.boolean().nullable().optional(),
    add_eos_token: z.boolean().nullable().optional(),
  })
  .loose();

const generationConfigSchema = z
  .object({ eos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional() })
  .loose();

async function readJsonIfExists(path: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: invalid JSON (${(err as Error).message}); fix or remove the file`);
  }
}

function parseWith<T extends z.ZodType>(schema: T, value: unknown, path: string): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${path}: field ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return r.data;
}

function tokenText(t: z.infer<typeof tokenField>): string | null {
  if (t === undefined || t === null) return null;
  return typeof t === "string" ? t : t.content;
}

/** The name chat templates' raise_exception calls are renamed to (see applyChatTemplate). */
const REFUSE = "tuneserve_raise_exception";

/** Picks the template: a plain string, the entry named "default" of a list (else its first), or chat_template.jinja. */
function pickTemplate(t: z.infer<typeof templateField>, jinjaFile: string | undefined): string | null {
  // An empty string or list is no template (the API's registration check reads it so too: api/src/lib/model-text.ts).
  if (typeof t === "string" && t.length > 0) return t;
  if (Array.isArray(t) && t.length > 0) return t.find((x) => x.name === "default")?.template ?? t[0].template;
  return jinjaFile ?? null;
}

/** Loads `tokenizer.json` (+ optional tokenizer_config.json, chat_template.jinja, generation_config.json, config.json); null without tokenizer.json. */
export async function loadTokenizer(modelDir: string): Promise<TextTokenizer | null> {
  const tokPath = join(modelDir, "tokenizer.json");
  const tokJson = await readJsonIfExists(tokPath);
  if (tokJson === undefined) return null;
  const cfgPath = join(modelDir, "tokenizer_config.json");
  const config = parseWith(tokenizerConfigSchema, (await readJsonIfExists(cfgPath)) ?? {}, cfgPath);
  const genPath = join(modelDir, "generation_config.json");
  const gen = parseWith(generationConfigSchema, (await readJsonIfExists(genPath)) ?? {}, genPath);
  // config.json's end ids count too: Hugging Face's generate() takes them when generation_config.json is absent.
  const modelPath = join(modelDir, "config.json");
  const model = parseWith(generationConfigSchema, (await readJsonIfExists(modelPath)) ?? {}, modelPath);
  const jinjaFile = await readFile(join(modelDir, "chat_template.jinja"), "utf8").catch(() => undefined);

  const build = (json: unknown): Tokenizer => {
    try {
      return new Tokenizer(json as object, config);
    } catch (err) {
      throw new Error(`${tokPath}: cannot build the tokenizer (${(err as Error).message})`);
    }
  };
  let tok = build(tokJson);

  const bos = tokenText(config.bos_token);
  const eos = tokenText(config.eos_token);
  const idOf = (text: string | null): number | null => (text === null ? null : (tok.token_to_id(text) ?? null));
  const bosId = idOf(bos);
  const eosId = idOf(eos);
  // tokenizer_config's add_bos_token / add_eos_token win over the post-processor, as in transformers.
  const added = specialsToAdd(config, addedByPostProcessor(tok), {
    bos: bos !== null && bosId !== null ? { text: bos, id: bosId } : null,
    eos: eos !== null && eosId !== null ? { text: eos, id: eosId } : null,
  });
  if (added) tok = build({ ...(tokJson as object), post_processor: templateProcessing(added) });
  const eosIds = new Set<number>();
  if (eosId !== null) eosIds.add(eosId);
  for (const ids of [gen.eos_token_id, model.eos_token_id]) for (const id of ids === undefined || ids === null ? [] : Array.isArray(ids) ? ids : [ids]) eosIds.add(id);

  let vocabSize = 0;
  let longestTokenBytes = 1;
  for (const [entry, id] of tok.get_vocab(true)) {
    vocabSize = Math.max(vocabSize, id + 1);
    longestTokenBytes = Math.max(longestTokenBytes, Buffer.byteLength(entry));
  }

  const templateText = pickTemplate(config.chat_template, jinjaFile);
  let template: Template | null = null;
  const specials = {
    bos_token: bos ?? "",
    eos_token: eos ?? "",
    pad_token: tokenText(config.pad_token) ?? "",
    unk_token: tokenText(config.unk_token) ?? "",
  };

  // Strings of special tokens a message's text could spell (single characters cannot be split apart).
  const addedTokens = (tokJson as { added_tokens?: { id: number; content: string; special?: boolean }[] }).added_tokens ?? [];
  const specialStrings = addedTokens.filter((t) => t.special && t.content.length > 1).map((t) => t.content);
  // Text that continues other text (a piece cut from a message, a completion): no SentencePiece "▁" before it.
  const unprefixed = withoutPrefixSpace(tokJson);
  let continuation: Tokenizer | null = null;
  const encodeContinuation = (piece: string): number[] => {
    if (unprefixed === null) return self.encode(piece, { addSpecialTokens: false });
    // The text up to the first added token (the template's markup) continues the message; what follows starts anew.
    const at = Math.min(...addedTokens.map((t) => piece.indexOf(t.content)).filter((i) => i >= 0), piece.length);
    continuation ??= new Tokenizer(unprefixed, config);
    const head = at > 0 ? continuation.encode(piece.slice(0, at), { add_special_tokens: false }).ids : [];
    return [...head, ...self.encode(piece.slice(at), { addSpecialTokens: false })];
  };

  // The model's text as written: no clean_up_tokenization_spaces (on in Llama 3's tokenizer_config, and the
  // library's default), which turns "x != y" into "x!= y" and, decoding a window at a time, drops the "!".
  // The library rejects an empty id list; an empty decode is simply "".
  const decode = (ids: number[], skipSpecialTokens: boolean): string =>
    ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });

  const self: TextTokenizer = {
    encode(text, opts) {
      if (opts?.continues) return encodeContinuation(text);
      const ids = tok.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? true }).ids;
      // A prompt that starts with BOS's text (a chat rendered by the client) has its BOS: the post-processor's
      // second one is not what the model was trained on (Llama 3 degrades after <|begin_of_text|> twice).
      const doubled = (opts?.addSpecialTokens ?? true) && bos !== null && bosId !== null && text.startsWith(bos) && ids[0] === bosId && ids[1] === bosId;
      return doubled ? ids.slice(1) : ids;
    },
    decode: (ids, opts) => decode(ids, opts?.skipSpecialTokens ?? false),
    applyChatTemplate(messages, opts) {
      if (templateText === null) {
        throw new Error(`${cfgPath}: no chat_template; add one (or chat_template.jinja) to use chat messages with this model`);
      }
      // raise_exception is how templates refuse a conversation (roles out of order, a role they lack): the
      // request's fault, said as an error of messages (a 400 naming them), unlike a template failing on its own.
      // The library's own raise_exception cannot be replaced, so the template calls one of ours by another name.
      template ??= new Template(templateText.replace(/\braise_exception(\s*\()/g, `${REFUSE}$1`));
      const refuse = (message: unknown) => {
        throw new Error(`messages: the model's chat template refuses them: ${String(message)}`);
      };
      // Mistral's templates refuse call ids other than 9 letters or digits: renamed for them (call-ids.ts).
      const rendered = self.toolCallFormat === "mistral" || self.toolCallFormat === "mistral_v11" ? nineCharacterCallIds(messages) : messages;
      return template.render({ messages: rendered, add_generation_prompt: opts?.addGenerationPrompt ?? false, ...(opts?.tools ? { tools: opts.tools } : {}), ...specials, [REFUSE]: refuse });
    },
    encodeChat(messages, opts) {
      // Only the template's markup may form special tokens, never the messages' text (plain-text.ts). Text
      // that spells no special token (nearly every request) is rendered and encoded in one piece, as it is.
      const texts = [...stringsOf(messages), ...stringsOf(opts?.tools ?? [])];
      if (!texts.some((t) => specialStrings.some((sp) => t.includes(sp)))) return self.encode(self.applyChatTemplate(messages, opts), { addSpecialTokens: false });
      const sep = absentCharacter([...texts, templateText ?? ""]);
      const plain = <T>(v: T) => mapStrings(v, (s) => defuse(s, specialStrings, sep));
      const text = self.applyChatTemplate(plain(messages), { ...opts, ...(opts?.tools ? { tools: plain(opts.tools) } : {}) });
      return text.split(sep).flatMap((piece, i) => self.encode(piece, { addSpecialTokens: false, continues: i > 0 }));
    },
    eosTokenIds: [...eosIds],
    toolCallFormat: templateText ? toolCallFormatOf(templateText) : null,
    writesCallIds: templateText ? writesCallIds(templateText) : false,
    bosTokenId: bosId,
    vocabSize,
    longestTokenBytes,
    specialTokenIds: new Set(addedTokens.filter((t) => t.special).map((t) => t.id)),
    tokenBytes: tokenBytesReader(tokJson as Parameters<typeof tokenBytesReader>[0], (id) => tok.id_to_token(id), (id) => decode([id], false)),
  };
  // The template's end of turn ends an answer too, also where the folder's own end ids leave it out (turn-end.ts).
  const turnEnd = templateText === null ? null : idOf(turnEndToken(self, specialStrings));
  if (turnEnd !== null && turnEnd !== bosId && !self.eosTokenIds.includes(turnEnd)) self.eosTokenIds.push(turnEnd);
  return self;
}

/** The special tokens the post-processor puts before and after a text's own. */
function addedByPostProcessor(tok: Tokenizer): AddedSpecials {
  const plain = tok.encode("a", { add_special_tokens: false }).ids;
  const full = tok.encode("a").ids;
  // full = before + plain + after.
  let at = 0;
  while (at + plain.length <= full.length && !plain.every((id, i) => full[at + i] === id)) at++;
  const special = (id: number): Special => ({ text: tok.id_to_token(id) ?? "", id });
  if (at + plain.length > full.length) return { before: [], after: [] };
  return { before: full.slice(0, at).map(special), after: full.slice(at + plain.length).map(special) };
}
