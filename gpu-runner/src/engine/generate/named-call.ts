// One call as Mistral's newer templates write it after [TOOL_CALLS] (tool_call_format mistral_v11, tokenizer v11+):
// `name[ARGS]{arguments}`, or, where the template writes call ids (and only there), `name[CALL_ID]id[ARGS]{arguments}`
// with an id of 9 letters or digits as those templates want. The name and arguments are held to the tools' `{"name", "arguments"}` grammar by feeding it
// what the call stands for (`{"name": "` name `", "arguments": ` arguments `}`), so that the arguments follow the
// named tool's parameters (each tool's anyOf branches included) with no second compiled grammar. A token is
// translated into those bytes and the grammar tries them in one piece, so a mask copies no grammar state per token
// (as JSON mode's does not). A JsonRecognizer, so CallBlock and JSON mode work on it unchanged.
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

/**
 * Where the call stands in its own shape (the grammar holds the rest). name: the tool's name; tag: inside [ARGS] or
 * [CALL_ID] (`tag` null until its second byte tells which); id: the call's id; args: the arguments' JSON. `at`:
 * bytes of the tag, or of the id, written so far; `hadId`: an id was written, only [ARGS] may follow it. Small, so
 * that trying a token copies this rather than the grammar.
 */
type Place = { phase: "name" | "tag" | "id" | "args" | "done"; tag: Uint8Array | null; at: number; hadId: boolean; nesting: Nesting };

const copyOf = (p: Place): Place => ({ ...p, nesting: { ...p.nesting } });

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
  private place: Place = { phase: "name", tag: null, at: 0, hadId: false, nesting: { depth: 0, inString: false, escaped: false } };
  /** The bytes the grammar reads for the token being tried or taken (reused: a mask tries every token). */
  private readonly said: number[] = [];

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
    return this.place.phase === "done";
  }

  get inPlainString(): boolean {
    return this.place.phase === "args" && this.call.inPlainString;
  }

  /** Before the arguments: where the call's tags ([ARGS], [CALL_ID]) may come, special tokens in Mistral's tokenizers. */
  get takesTags(): boolean {
    const { phase } = this.place;
    return phase === "name" || phase === "tag" || phase === "id";
  }

  push(bytes: Uint8Array): boolean {
    const p = copyOf(this.place);
    const said = this.translate(p, bytes);
    if (!said || !this.call.push(said)) return false;
    this.place = p;
    return p.phase !== "done" || this.call.done;
  }

  /** Whether `bytes` would continue the call; the state is left as it was, and the grammar tries them without a copy of this call. */
  accepts(bytes: Uint8Array): boolean {
    // Inside the arguments (most tokens), the bytes are the grammar's as they are, unless they close the call.
    if (this.place.phase === "args") {
      const n = { ...this.place.nesting };
      const end = bytes.findIndex((b) => nest(n, b));
      if (end < 0) return this.call.accepts(bytes);
    }
    const said = this.translate(copyOf(this.place), bytes);
    return said !== null && this.call.accepts(said);
  }

  clone(): NamedCall {
    const c = new NamedCall(this.call.clone(), this.callIds);
    c.place = copyOf(this.place);
    return c;
  }

  /** Steps `p` over `bytes`: the bytes the grammar reads for them, or null when they break the call's shape. */
  private translate(p: Place, bytes: Uint8Array): Uint8Array | null {
    const said = this.said;
    said.length = 0;
    for (const b of bytes) if (!this.step(p, b, said)) return null;
    return Uint8Array.from(said);
  }

  /** One byte: its shape checked, what the grammar reads for it put in `said`. */
  private step(p: Place, b: number, said: number[]): boolean {
    switch (p.phase) {
      case "name":
        if (b !== TAG_OPEN) {
          if (!isNameByte(b)) return false;
          said.push(b);
          return true;
        }
        said.push(QUOTE);
        return this.openTag(p);
      case "id":
        if (b === TAG_OPEN) return p.at === ID_LENGTH && this.openTag(p);
        return isAlnum(b) && ++p.at <= ID_LENGTH;
      case "tag":
        return this.inTag(p, b, said);
      case "args":
        said.push(b);
        // The arguments' object closes the call, and nothing comes after it.
        if (nest(p.nesting, b)) {
          said.push(CALL_CLOSES[0]);
          p.phase = "done";
        }
        return true;
      default:
        return false;
    }
  }

  private openTag(p: Place): boolean {
    p.phase = "tag";
    p.tag = p.hadId || !this.callIds ? ARGS : null;
    p.at = 1;
    return true;
  }

  private inTag(p: Place, b: number, said: number[]): boolean {
    p.tag ??= b === CALL_ID[1] ? CALL_ID : ARGS;
    if (p.tag[p.at] !== b) return false;
    if (++p.at < p.tag.length) return true;
    p.at = 0;
    if (p.tag === CALL_ID) {
      p.phase = "id";
      p.hadId = true;
      return true;
    }
    p.phase = "args";
    said.push(...ARGUMENTS_OPEN);
    return true;
  }
}
