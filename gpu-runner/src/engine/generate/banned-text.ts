// Text a sequence must never write: a token is refused when the bytes written so far and its own would hold
// the banned bytes (tool_choice "none" keeps a model trained to call tools from opening a <tool_call> block).
// Like JSON mode, the model's pick is checked first and the vocabulary is masked only on a refusal.
import type { JsonVocabulary } from "./json-mode.js";
import { TagScanner } from "./bytes.js";
import { maskRefused } from "./mask.js";

export class BannedText {
  private readonly scanner: TagScanner;
  /** Bytes of the banned text the text written last has matched. */
  private matched = 0;

  /**
   * `hidden`: tokens the answer's text leaves out (sequence.ts hiddenTokens). They write nothing there, so the
   * banned text goes on across them: `<tool_` + <|im_start|> + `call` shows as `<tool_call`. One that spells the
   * banned text itself (a tokenizer that marks `<tool_call>` special) is still refused: the model opens a call with it.
   */
  constructor(
    private readonly vocab: Pick<JsonVocabulary, "tokenBytes" | "vocabSize">,
    banned: Uint8Array,
    private readonly hidden?: ReadonlySet<number>,
  ) {
    if (banned.length === 0) throw new Error("banned text: empty");
    this.scanner = new TagScanner(banned);
  }

  /** Whether token `t` may come next. */
  allows(t: number): boolean {
    return this.after(t) >= 0;
  }

  /** Masks, in place, the tokens that would write the banned text; throws when none is left. */
  mask(logits: Float32Array): void {
    maskRefused(logits, (t) => this.allows(t), "banned text: every token of the vocabulary would write it");
  }

  /** Feeds the token taken; never ends the sequence. */
  take(t: number): boolean {
    this.matched = Math.max(0, this.after(t));
    return false;
  }

  /** The state after token `t`, or −1 when it would complete the banned text (ids past the tokenizer and hidden ones write nothing). */
  private after(t: number): number {
    if (t >= this.vocab.vocabSize) return this.matched;
    if (this.hidden?.has(t)) return this.scan(0, t) < 0 ? -1 : this.matched;
    return this.scan(this.matched, t);
  }

  /** The state after token `t`'s bytes from state `m`, or −1 when they complete the banned text. */
  private scan(m: number, t: number): number {
    for (const b of this.vocab.tokenBytes(t)) {
      m = this.scanner.next(m, b);
      if (m === this.scanner.tag.length) return -1;
    }
    return m;
  }
}
