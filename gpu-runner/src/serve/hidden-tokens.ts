// The tokens an answer's text leaves out: the special ones (tokenizer.json's added tokens marked special: BOS,
// chat markers, …), as Hugging Face's skip_special_tokens and vLLM do by default and OpenAI users expect.
import type { TextTokenizer } from "../engine/tokenizer/tokenizer.js";

const utf8 = new TextDecoder();

/**
 * The special tokens of `tok` but those that spell one of `kept`: the tool-call tags, special in some tokenizers
 * (not Qwen2.5's), without which the API could not find the calls (vLLM's Hermes parser keeps them likewise).
 * Taken once per tokenizer; a sequence then asks the set once per token.
 */
export function hiddenTokens(tok: Pick<TextTokenizer, "specialTokenIds" | "tokenBytes">, kept: readonly string[] = []): ReadonlySet<number> {
  return new Set([...tok.specialTokenIds].filter((id) => !kept.includes(utf8.decode(tok.tokenBytes(id)))));
}
