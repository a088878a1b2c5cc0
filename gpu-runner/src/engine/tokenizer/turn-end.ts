// The special token a chat template closes an assistant turn with (ChatML's <|im_end|>, Llama 3's <|eot_id|>).
// A base model's folder often ends generation at its end of text only (Qwen2-7B: <|endoftext|>), while its
// template, and so a chat fine-tune of it, ends each turn with another token: without it as a stop token the
// answer runs on into the next turn until max_tokens.
import type { ChatMessage } from "./tokenizer.js";

const PROBE = "tuneserve-turn-probe";

/**
 * Renders one exchange and returns the first of `specials` after the assistant's text (only whitespace between,
 * as Llama 2's " </s>"); null when none follows or the template refuses the exchange.
 */
export function turnEndToken(tok: { applyChatTemplate(messages: ChatMessage[]): string }, specials: readonly string[]): string | null {
  let text: string;
  try {
    text = tok.applyChatTemplate([{ role: "user", content: "Hi" }, { role: "assistant", content: PROBE }]);
  } catch {
    return null;
  }
  const at = text.lastIndexOf(PROBE);
  if (at < 0) return null;
  const after = text.slice(at + PROBE.length);
  let best: { index: number; token: string } | null = null;
  for (const s of specials) {
    const i = after.indexOf(s);
    if (i >= 0 && (best === null || i < best.index || (i === best.index && s.length > best.token.length))) best = { index: i, token: s };
  }
  return best && after.slice(0, best.index).trim() === "" ? best.token : null;
}
