// A byte-level recognizer of one JSON object (RFC 8259, with an object at the top, as OpenAI's JSON mode asks
// for), fed a token's bytes at a time. `accepts(bytes)` tries bytes without keeping them (an undo log, no
// copies), so a generator can check or mask tokens before it takes one. Stricter than RFC 8259 on
// whitespace and numbers (json-limits.ts) and on UTF-8 (json-bytes.ts), and nothing may follow the object.
// Numbers are read by json-number.ts.
import { isHex, isShortEscape, isSpace, utf8Lead } from "./json-bytes.js";
import { MAX_INDENT, MAX_LEADING, MAX_NEWLINES } from "./json-limits.js";
import { copyNumber, numberByte, numberComplete, numberStart, startsNumber, type JsonNumber } from "./json-number.js";

const enum Mode {
  Start, // before the top-level object: whitespace or {
  ObjectOpen, // after {: whitespace, a key's opening quote or }
  ObjectKey, // after a comma in an object: whitespace or a key's opening quote
  Colon, // after a key: whitespace or :
  Value, // a value must start
  ArrayOpen, // after [: whitespace, ] or a value
  AfterValue, // whitespace, a comma or the container's closing bracket
  String, // inside a string (key or value)
  Escape, // after a backslash
  Hex, // inside \uXXXX
  Number, // inside a number (json-number.ts)
  Literal, // inside true / false / null
  Done, // the top-level object closed: nothing may follow
}

const OBJECT = 0;
const ARRAY = 1;
const LITERALS = ["true", "false", "null"].map((w) => new TextEncoder().encode(w));

/** What push() changes besides the stack's entries, saved by accepts() and put back after. */
type Snapshot = {
  mode: Mode;
  depth: number;
  key: boolean;
  number: JsonNumber;
  utf8Left: number;
  utf8Lo: number;
  utf8Hi: number;
  hexLeft: number;
  literal: number;
  at: number;
  newlines: number;
  indent: number;
};

export class JsonObjectRecognizer {
  private mode = Mode.Start;
  /** Open containers, OBJECT or ARRAY; `depth` of them are live (the array is reused, not shrunk). */
  private readonly stack: number[] = [];
  private depth = 0;
  /** The string being read is a key. */
  private key = false;
  /** The number being read (a placeholder until the first one starts). */
  private number = numberStart(0x30);
  /** Continuation bytes of the UTF-8 character being read, and the range the next one must fall in. */
  private utf8Left = 0;
  private utf8Lo = 0x80;
  private utf8Hi = 0xbf;
  /** Hex digits of a \u escape still due. */
  private hexLeft = 0;
  /** The literal being read (index into LITERALS) and how many of its bytes were read. */
  private literal = 0;
  private at = 0;
  /** Whitespace between JSON tokens: newlines in a row, and spaces or tabs since the last one. */
  private newlines = 0;
  private indent = 0;
  /** Stack writes made while trying bytes: [index, old value] pairs, undone afterwards. */
  private readonly undo: number[] = [];
  private trying = false;

  /** The top-level object has closed. */
  get done(): boolean {
    return this.mode === Mode.Done;
  }

  /** Inside a string (any key goes in JSON mode), between characters: bytes without `"`, `\\` or controls that are well-formed UTF-8 so far continue it. */
  get inPlainString(): boolean {
    return this.mode === Mode.String && this.utf8Left === 0;
  }

  /** Feeds bytes for good; false when they break the JSON (the state is then unusable). */
  push(bytes: Uint8Array): boolean {
    for (const b of bytes) if (!this.step(b)) return false;
    return true;
  }

  /** Whether `bytes` would continue the JSON; the state is left as it was. */
  accepts(bytes: Uint8Array): boolean {
    const saved = this.snapshot();
    this.trying = true;
    let ok = true;
    for (const b of bytes) {
      if (!this.step(b)) {
        ok = false;
        break;
      }
    }
    this.trying = false;
    for (let i = this.undo.length - 2; i >= 0; i -= 2) this.stack[this.undo[i]] = this.undo[i + 1];
    this.undo.length = 0;
    Object.assign(this, saved);
    return ok;
  }

  private snapshot(): Snapshot {
    const { mode, depth, key, utf8Left, utf8Lo, utf8Hi, hexLeft, literal, at, newlines, indent } = this;
    // Only a number being read changes in place; a number started while trying is a new object.
    const number = mode === Mode.Number ? copyNumber(this.number) : this.number;
    return { mode, depth, key, number, utf8Left, utf8Lo, utf8Hi, hexLeft, literal, at, newlines, indent };
  }

  private step(b: number): boolean {
    const inText = this.mode === Mode.String || this.mode === Mode.Escape || this.mode === Mode.Hex;
    if (!inText && isSpace(b)) return this.space(b);
    this.newlines = 0;
    this.indent = 0;
    switch (this.mode) {
      case Mode.Start:
        return b === 0x7b && this.open(OBJECT);
      case Mode.ObjectOpen:
      case Mode.ObjectKey:
        if (b === 0x22) return this.startString(true);
        return this.mode === Mode.ObjectOpen && b === 0x7d && this.close(OBJECT);
      case Mode.Colon:
        if (b !== 0x3a) return false;
        this.mode = Mode.Value;
        return true;
      case Mode.Value:
        return this.startValue(b);
      case Mode.ArrayOpen:
        return b === 0x5d ? this.close(ARRAY) : this.startValue(b);
      case Mode.AfterValue:
        return this.afterValue(b);
      case Mode.String:
        return this.inString(b);
      case Mode.Escape:
        return this.escaped(b);
      case Mode.Hex:
        if (!isHex(b)) return false;
        if (--this.hexLeft === 0) this.mode = Mode.String;
        return true;
      case Mode.Number:
        return this.inNumber(b);
      case Mode.Literal: {
        const word = LITERALS[this.literal];
        if (word[this.at] !== b) return false;
        if (++this.at === word.length) this.mode = Mode.AfterValue;
        return true;
      }
      case Mode.Done:
        return false;
    }
  }

  /** Whitespace between JSON tokens (it also ends a number). */
  private space(b: number): boolean {
    if (this.mode === Mode.Done || this.mode === Mode.Literal) return false;
    if (this.mode === Mode.Start) return ++this.indent <= MAX_LEADING;
    if (this.mode === Mode.Number) {
      if (!numberComplete(this.number)) return false;
      this.mode = Mode.AfterValue;
    }
    if (b === 0x0a) {
      this.indent = 0;
      return ++this.newlines <= MAX_NEWLINES;
    }
    return ++this.indent <= MAX_INDENT;
  }

  private open(kind: number): boolean {
    if (this.trying) this.undo.push(this.depth, this.stack[this.depth]);
    this.stack[this.depth++] = kind;
    this.mode = kind === OBJECT ? Mode.ObjectOpen : Mode.ArrayOpen;
    return true;
  }

  private close(kind: number): boolean {
    if (this.depth === 0 || this.stack[this.depth - 1] !== kind) return false;
    this.depth--;
    this.mode = this.depth === 0 ? Mode.Done : Mode.AfterValue;
    return true;
  }

  private startString(key: boolean): boolean {
    this.mode = Mode.String;
    this.key = key;
    return true;
  }

  /** A value starting with byte b. */
  private startValue(b: number): boolean {
    if (b === 0x7b) return this.open(OBJECT);
    if (b === 0x5b) return this.open(ARRAY);
    if (b === 0x22) return this.startString(false);
    if (startsNumber(b)) {
      this.mode = Mode.Number;
      this.number = numberStart(b);
      return true;
    }
    const lit = LITERALS.findIndex((w) => w[0] === b);
    if (lit < 0) return false;
    this.mode = Mode.Literal;
    this.literal = lit;
    this.at = 1;
    return true;
  }

  private afterValue(b: number): boolean {
    const inObject = this.stack[this.depth - 1] === OBJECT;
    if (b === 0x2c) {
      this.mode = inObject ? Mode.ObjectKey : Mode.Value;
      return true;
    }
    return inObject ? b === 0x7d && this.close(OBJECT) : b === 0x5d && this.close(ARRAY);
  }

  private inString(b: number): boolean {
    if (this.utf8Left > 0) {
      if (b < this.utf8Lo || b > this.utf8Hi) return false;
      this.utf8Left--;
      this.utf8Lo = 0x80;
      this.utf8Hi = 0xbf;
      return true;
    }
    if (b === 0x22) {
      this.mode = this.key ? Mode.Colon : Mode.AfterValue;
      return true;
    }
    if (b === 0x5c) {
      this.mode = Mode.Escape;
      return true;
    }
    if (b < 0x20) return false;
    if (b < 0x80) return true;
    return this.utf8Lead(b);
  }

  /** A UTF-8 lead byte: how many continuation bytes follow, and the narrower range of the first (RFC 3629). */
  private utf8Lead(b: number): boolean {
    const lead = utf8Lead(b);
    if (!lead) return false;
    [this.utf8Left, this.utf8Lo, this.utf8Hi] = [lead.left, lead.lo, lead.hi];
    return true;
  }

  private escaped(b: number): boolean {
    if (b === 0x75) {
      this.mode = Mode.Hex;
      this.hexLeft = 4;
      return true;
    }
    if (!isShortEscape(b)) return false;
    this.mode = Mode.String;
    return true;
  }

  private inNumber(b: number): boolean {
    const taken = numberByte(this.number, b);
    if (taken !== "ended") return taken;
    this.mode = Mode.AfterValue;
    return this.afterValue(b);
  }
}
