// One call as Mistral's newer templates write it after [TOOL_CALLS] (tool_call_format mistral_v11, tokenizer v11+):
// `name[ARGS]{arguments}`, or, where the template writes call ids (and only there), `name[CALL_ID]id[ARGS]{arguments}`
// with an id of 9 letters or digits as those templates want. The name and arguments are held to the tools' `{"name", "arguments"}` grammar by feeding it
// what the call stands for (`{"name": "` name `", "arguments": ` arguments `}`), so that the arguments follow the
// named tool's parameters (each tool's anyOf branches included) with no second compiled grammar. A JsonRecognizer,
// so CallBlock and JSON mode work on it unchanged.
import type { CloneableRecognizer } from "./call-block.js";
import { NAMED_CALL_TAGS } from "../../../../api/src/inference/runner-protocol.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const ARGS = utf8(NAMED_CALL_TAGS.args);
const CALL_ID = utf8(NAMED_CALL_TAGS.callId);
const NAME_OPENS = utf8('{"name": "');
const ARGUMENTS_OPEN = utf8(', "arguments": ');
const CALL_CLOSES = utf8("}");
const ID_LENGTH = 9;
const TAG_OPEN = 0x5b; // [
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

const isAlnum = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
/** A byte of a tool's name as OpenAI allows it (runner-protocol.ts TOOL_NAME), none of which JSON escapes. */
const isNameByte = (b: number) => isAlnum(b) || b === 0x5f || b === 0x2d;

/** Where the arguments' JSON stands: nesting depth, and inside a string (after a backslash). Only counts: the grammar checks. */
type Nesting = { depth: number; inString: boolean; escaped: boolean };

/** Steps `n` over byte `b`; true when it closes the arguments' object. */
function nest(n: Nesting, b: number): boolean {
  if (n.inString) {
    if (n.escaped) n.escaped = false;
    else if (b === BACKSLASH) n.escaped = true;
    else if (b === QUOTE) n.inString = false;
    return false;
  }
  if (b === QUOTE) n.inString = true;
  else if (b === 0x7b || b === 0x5b) n.depth++;
  else if (b === 0x7d || b === 0x5d) return --n.depth === 0;
  return false;
}

export class NamedCall implements CloneableRecognizer {
  /** name: the tool's name; tag: inside [ARGS] or [CALL_ID] (`tag` null until its second byte tells which); id: the call's id; args: the arguments' JSON. */
  private phase: "name" | "tag" | "id" | "args" | "done" = "name";
  private tag: Uint8Array | null = null;
  /** Bytes of the tag, or of the id, written so far. */
  private at = 0;
  /** An id was written: only [ARGS] may follow it. */
  private hadId = false;
  private nesting: Nesting = { depth: 0, inString: false, escaped: false };

  private constructor(
    private call: CloneableRecognizer,
    private readonly callIds: boolean,
  ) {}

  /**
   * A call read against `grammar` (a fresh recognizer of `{"name", "arguments"}` for the tools); `callIds`: the
   * template writes call ids, so `[CALL_ID]id` may come before [ARGS] (a model trained on another template never saw one).
   */
  static open(grammar: () => CloneableRecognizer, callIds: boolean): NamedCall {
    const call = grammar();
    if (!call.push(NAME_OPENS)) throw new Error('tool calls: the calls\' grammar does not begin {"name": …');
    return new NamedCall(call, callIds);
  }

  get done(): boolean {
    return this.phase === "done";
  }

  get inPlainString(): boolean {
    return this.phase === "args" && this.call.inPlainString;
  }

  /** Before the arguments: where the call's tags ([ARGS], [CALL_ID]) may come, special tokens in Mistral's tokenizers. */
  get takesTags(): boolean {
    return this.phase === "name" || this.phase === "tag" || this.phase === "id";
  }

  push(bytes: Uint8Array): boolean {
    for (let i = 0; i < bytes.length; i++) {
      if (this.phase === "args") {
        // The arguments' bytes go to the grammar in one piece, up to the byte that closes them.
        let end = i;
        while (end < bytes.length && !nest(this.nesting, bytes[end])) end++;
        if (end === bytes.length) return this.call.push(bytes.subarray(i));
        if (end !== bytes.length - 1 || !this.call.push(bytes.subarray(i, end + 1)) || !this.call.push(CALL_CLOSES)) return false;
        this.phase = "done";
        return this.call.done;
      }
      if (!this.step(bytes[i])) return false;
    }
    return true;
  }

  /** Whether `bytes` would continue the call; the state is left as it was. */
  accepts(bytes: Uint8Array): boolean {
    if (this.phase !== "args") return this.clone().push(bytes);
    // Inside the arguments (most tokens), the grammar tries them without a copy.
    const n = { ...this.nesting };
    const end = bytes.findIndex((b) => nest(n, b));
    if (end < 0) return this.call.accepts(bytes);
    if (end !== bytes.length - 1) return false;
    const closed = new Uint8Array(bytes.length + 1);
    closed.set(bytes);
    closed[bytes.length] = CALL_CLOSES[0];
    return this.call.accepts(closed);
  }

  clone(): NamedCall {
    const c = new NamedCall(this.call.clone(), this.callIds);
    c.phase = this.phase;
    c.tag = this.tag;
    c.at = this.at;
    c.hadId = this.hadId;
    c.nesting = { ...this.nesting };
    return c;
  }

  /** One byte before the arguments. */
  private step(b: number): boolean {
    switch (this.phase) {
      case "name":
        if (b === TAG_OPEN) return this.openTag() && this.call.push(utf8('"'));
        return isNameByte(b) && this.call.push(Uint8Array.of(b));
      case "id":
        if (b === TAG_OPEN) return this.at === ID_LENGTH && this.openTag();
        return isAlnum(b) && ++this.at <= ID_LENGTH;
      case "tag":
        return this.inTag(b);
      default:
        return false;
    }
  }

  private openTag(): boolean {
    this.phase = "tag";
    this.tag = this.hadId || !this.callIds ? ARGS : null;
    this.at = 1;
    return true;
  }

  private inTag(b: number): boolean {
    this.tag ??= b === CALL_ID[1] ? CALL_ID : ARGS;
    if (this.tag[this.at] !== b) return false;
    if (++this.at < this.tag.length) return true;
    this.at = 0;
    if (this.tag === CALL_ID) {
      this.phase = "id";
      this.hadId = true;
      return true;
    }
    this.phase = "args";
    return this.call.push(ARGUMENTS_OPEN);
  }
}
