// The body of one tool call as Hermes-style chat templates write it after the opening tag
// (`<tool_call>\n{"name": …, "arguments": …}\n</tool_call>`): at most one newline or space, the call's JSON
// (a recognizer of the tools' grammar: a call's object, or Mistral's array of them, call-list.ts), at most one
// newline or space, the closing tag, and then up to `trailing` spaces or newlines (so that a token such as `>\n`
// may end a call). With an empty closing tag (a Llama 3.1 call, Mistral's array) it ends with the JSON. It is a
// JsonRecognizer, so JSON mode's mask and checks work on it unchanged.
import type { JsonRecognizer } from "./json-mode.js";

/**
 * A recognizer whose state can be copied (json-schema.ts's). `takesTags`: it is where the call's own tags may
 * come (Mistral's [ARGS] before a call's arguments, named-call.ts), which some tokenizers spell as special tokens.
 */
export type CloneableRecognizer = JsonRecognizer & { clone(): CloneableRecognizer; readonly takesTags?: boolean };

const CLOSING_BRACE = 0x7d;
const isGap = (b: number) => b === 0x0a || b === 0x20;
const isSpace = (b: number) => isGap(b) || b === 0x0d || b === 0x09;

export class CallBlock implements JsonRecognizer {
  private phase: "lead" | "json" | "tail" = "lead";
  /** Whether the current gap (before the JSON, or before the closing tag) has had its byte. */
  private gapTaken = false;
  /** Bytes of the closing tag written so far. */
  private closed = 0;
  /** The spaces and newlines written after the closing tag. */
  private after = 0;

  constructor(
    private json: CloneableRecognizer,
    private readonly closing: Uint8Array,
    private readonly trailing = 0,
  ) {}

  /** The spaces and newlines written after the closing tag. */
  get spacesAfter(): number {
    return this.after;
  }

  get done(): boolean {
    return this.phase === "tail" && this.closed === this.closing.length;
  }

  get inPlainString(): boolean {
    return this.phase === "json" && this.json.inPlainString;
  }

  get takesTags(): boolean {
    return this.phase === "json" && this.json.takesTags === true;
  }

  push(bytes: Uint8Array): boolean {
    let i = 0;
    while (i < bytes.length) {
      if (this.phase === "json") {
        // Most tokens lie inside the JSON: tried whole first.
        const whole = this.json.clone();
        if (whole.push(bytes.subarray(i))) {
          this.json = whole;
          if (whole.done) this.enterTail();
          return true;
        }
        // The JSON may end inside them: a byte at a time up to its end, and the rest after it.
        for (; i < bytes.length && !this.json.done; i++) if (!this.json.push(bytes.subarray(i, i + 1))) return false;
        if (!this.json.done) return false;
        this.enterTail();
        continue;
      }
      const b = bytes[i];
      if (this.phase === "lead") {
        if (isGap(b) && !this.gapTaken) {
          this.gapTaken = true;
          i++;
          continue;
        }
        // After the gap, the JSON's own leading space would make it two.
        if (this.gapTaken && isSpace(b)) return false;
        this.phase = "json";
        continue;
      }
      if (this.done) {
        if (!isGap(b) || this.after >= this.trailing) return false;
        this.after++;
      } else if (isGap(b) && !this.gapTaken && this.closed === 0) this.gapTaken = true;
      else if (this.closing[this.closed] === b) this.closed++;
      else return false;
      i++;
    }
    return true;
  }

  /**
   * Whether `bytes` would continue the call; the state is left as it was. Before and in the JSON (where a mask tries
   * every token), the gap is checked here and the JSON's bytes tried by its grammar, with no copy of the call.
   */
  accepts(bytes: Uint8Array): boolean {
    if (this.phase === "lead" || this.phase === "json") {
      const start = this.phase === "lead" ? this.jsonStart(bytes) : 0;
      if (start < 0) return false;
      const json = bytes.subarray(start);
      if (json.length === 0 || this.json.accepts(json)) return true;
      // Bytes may follow the JSON only after a call's object, which ends with a `}` (Mistral's array of calls,
      // without a closing tag, has nothing after it: auto-tool-calls.ts).
      if (!json.includes(CLOSING_BRACE)) return false;
    }
    return this.clone().push(bytes);
  }

  /** Before the JSON: where it would begin in `bytes` (after the gap's one byte), or −1 when a second space comes. */
  private jsonStart(bytes: Uint8Array): number {
    const gap = !this.gapTaken && bytes.length > 0 && isGap(bytes[0]) ? 1 : 0;
    // After the gap, the JSON's own leading space would make it two.
    if ((this.gapTaken || gap === 1) && gap < bytes.length && isSpace(bytes[gap])) return -1;
    return gap;
  }

  clone(): CallBlock {
    const c = new CallBlock(this.json.clone(), this.closing, this.trailing);
    c.phase = this.phase;
    c.gapTaken = this.gapTaken;
    c.closed = this.closed;
    c.after = this.after;
    return c;
  }

  private enterTail(): void {
    this.phase = "tail";
    this.gapTaken = false;
  }
}
