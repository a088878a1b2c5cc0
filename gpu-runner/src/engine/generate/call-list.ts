// The calls of a Mistral-style template after its [TOOL_CALLS] token: one JSON array of call objects
// (`[{"name": …, "arguments": …}, {…}]`), each following the tools' grammar (an object's branches all start with
// `{`, which a schema's anyOf cannot tell apart, so the array is read here rather than compiled), compact as
// templates write it: `, ` or `,` between calls, nothing else. A JsonRecognizer, so JSON mode's mask and
// checks, and CallBlock, work on it unchanged.
import type { CloneableRecognizer } from "./call-block.js";

const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const COMMA = 0x2c;
const SPACE = 0x20;
const OPENING_BRACE = 0x7b;
const CLOSING_BRACE = 0x7d;

export class CallList implements CloneableRecognizer {
  /** open: before `[`; next: before a call (one space may come first); call: inside one; after: a call has closed; done: `]`. */
  private phase: "open" | "next" | "call" | "after" | "done" = "open";
  private spaceTaken = false;
  private calls = 0;
  private call: CloneableRecognizer | null = null;

  /** `grammar`: a fresh recognizer of one call; `maxCalls`: the most calls the array may hold. */
  constructor(
    private readonly grammar: () => CloneableRecognizer,
    private readonly maxCalls = Infinity,
  ) {}

  get done(): boolean {
    return this.phase === "done";
  }

  get inPlainString(): boolean {
    return this.phase === "call" && this.call!.inPlainString;
  }

  push(bytes: Uint8Array): boolean {
    let i = 0;
    while (i < bytes.length) {
      if (this.phase === "call") {
        // Most tokens lie inside a call: tried whole first.
        const whole = this.call!.clone();
        if (whole.push(bytes.subarray(i))) {
          this.call = whole;
          if (whole.done) this.phase = "after";
          return true;
        }
        // The call may end inside them: a byte at a time up to its end, and the rest after it.
        const call = this.call!;
        for (; i < bytes.length && !call.done; i++) if (!call.push(bytes.subarray(i, i + 1))) return false;
        if (!call.done) return false;
        this.phase = "after";
        continue;
      }
      const b = bytes[i++];
      if (this.phase === "open") {
        if (b !== OPEN) return false;
        this.phase = "next";
      } else if (this.phase === "next") {
        if (b === SPACE && !this.spaceTaken) this.spaceTaken = true;
        else if (b !== OPENING_BRACE) return false;
        else {
          this.call = this.grammar();
          this.calls++;
          this.phase = "call";
          i--; // the `{` is the call's own
        }
      } else if (this.phase === "after") {
        if (b === CLOSE) this.phase = "done";
        else if (b === COMMA && this.calls < this.maxCalls) {
          this.phase = "next";
          this.spaceTaken = false;
        } else return false;
      } else return false;
    }
    return true;
  }

  /** Whether `bytes` would continue the calls; the state is left as it was. */
  accepts(bytes: Uint8Array): boolean {
    if (this.phase === "call") {
      if (this.call!.accepts(bytes)) return true;
      // A call is an object: it can end only with a `}`.
      if (!bytes.includes(CLOSING_BRACE)) return false;
    }
    return this.clone().push(bytes);
  }

  clone(): CallList {
    const c = new CallList(this.grammar, this.maxCalls);
    c.phase = this.phase;
    c.spaceTaken = this.spaceTaken;
    c.calls = this.calls;
    c.call = this.call?.clone() ?? null;
    return c;
  }
}
