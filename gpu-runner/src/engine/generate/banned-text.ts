// Text a sequence must never write: a token is refused when the bytes written so far and its own would hold
// the banned bytes (tool_choice "none" keeps a model trained to call tools from opening a <tool_call> block).
// Like JSON mode, the model's pick is checked first and the vocabulary is masked only on a refusal.
import type { JsonVocabulary } from "./json-mode.js";
import { concatBytes as concat, indexOfBytes } from "./bytes.js";

export class BannedText {
  /** The last bytes written, as many as could begin the banned text. */
  private tail = new Uint8Array(0);

  constructor(
    private readonly vocab: Pick<JsonVocabulary, "tokenBytes" | "vocabSize">,
    private readonly banned: Uint8Array,
  ) {
    if (banned.length === 0) throw new Error("banned text: empty");
  }

  /** Whether token `t` may come next. */
  allows(t: number): boolean {
    if (t >= this.vocab.vocabSize) return true;
    return indexOfBytes(concat(this.tail, this.vocab.tokenBytes(t)), this.banned) < 0;
  }

  /** Masks, in place, the tokens that would write the banned text; throws when none is left. */
  mask(logits: Float32Array): void {
    let any = false;
    for (let t = 0; t < logits.length; t++) {
      if (logits[t] === -Infinity) continue;
      if (this.allows(t)) any = true;
      else logits[t] = -Infinity;
    }
    if (!any) throw new Error("banned text: every token of the vocabulary would write it");
  }

  /** Feeds the token taken; never ends the sequence. */
  take(t: number): boolean {
    if (t < this.vocab.vocabSize) {
      const all = concat(this.tail, this.vocab.tokenBytes(t));
      this.tail = all.slice(Math.max(0, all.length - (this.banned.length - 1)));
    }
    return false;
  }
}
