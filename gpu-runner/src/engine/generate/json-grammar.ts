// A byte-level recognizer of one JSON object (RFC 8259, with an object at the top, as OpenAI's JSON mode asks
// for), fed a token's bytes at a time. `accepts(bytes)` tries bytes without keeping them (an undo log, no
// copies), so a generator can mask every token that would break the JSON before it samples.
// Stricter than RFC 8259 on whitespace, so that a model cannot spend its tokens on it: the object must come
// first, and at most MAX_BLANK whitespace bytes may follow each other between tokens of the JSON.

const enum Mode {
  Start, // before the top-level object: {
  ObjectOpen, // after {: whitespace, a key's opening quote or }
  ObjectKey, // after a comma in an object: whitespace or a key's opening quote
  Colon, // after a key: whitespace or :
  Value, // a value must start
  ArrayOpen, // after [: whitespace, ] or a value
  AfterValue, // whitespace, a comma or the container's closing bracket
  String, // inside a string (key or value)
  Escape, // after a backslash
  Hex, // inside \uXXXX
  Number, // inside a number (see NumberPart)
  Literal, // inside true / false / null
  Done, // the top-level object closed: only whitespace may follow
}

const enum NumberPart {
  Minus, // after -: a digit
  Zero, // a leading 0: . e E or the end
  Int, // integer digits
  Dot, // after .: a digit
  Frac, // fraction digits
  E, // after e/E: a sign or a digit
  ESign, // after the exponent's sign: a digit
  Exp, // exponent digits
}

/** The longest run of whitespace allowed between JSON tokens (pretty-printing needs a newline and some indent). */
export const MAX_BLANK = 16;

const OBJECT = 0;
const ARRAY = 1;
const LITERALS = ["true", "false", "null"].map((w) => new TextEncoder().encode(w));

const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

/** Continuation bytes a UTF-8 lead byte announces, or −1 for a byte that cannot start a character. */
function utf8Tail(b: number): number {
  if (b < 0x80) return 0;
  if (b >= 0xc2 && b <= 0xdf) return 1;
  if (b >= 0xe0 && b <= 0xef) return 2;
  if (b >= 0xf0 && b <= 0xf4) return 3;
  return -1;
}

type Scalars = { mode: Mode; depth: number; key: boolean; part: NumberPart; left: number; literal: number; at: number; blank: number };

export class JsonObjectRecognizer {
  private mode = Mode.Start;
  /** Open containers, OBJECT or ARRAY; `depth` of them are live (the array is reused, not shrunk). */
  private readonly stack: number[] = [];
  private depth = 0;
  /** The string being read is a key. */
  private key = false;
  private part = NumberPart.Int;
  /** UTF-8 continuation bytes, or \u hex digits, still due. */
  private left = 0;
  /** The literal being read (index into LITERALS) and how many of its bytes were read. */
  private literal = 0;
  private at = 0;
  /** Whitespace bytes in a row so far. */
  private blank = 0;
  /** Stack writes made while trying bytes: [index, old value] pairs, undone afterwards. */
  private readonly undo: number[] = [];
  private trying = false;

  /** The top-level object has closed. */
  get done(): boolean {
    return this.mode === Mode.Done;
  }

  /** Feeds bytes for good; false (and the state is then undefined) when they break the JSON. */
  push(bytes: Uint8Array): boolean {
    for (const b of bytes) if (!this.step(b)) return false;
    return true;
  }

  /** Whether `bytes` would continue the JSON; the state is left as it was. */
  accepts(bytes: Uint8Array): boolean {
    const saved: Scalars = { mode: this.mode, depth: this.depth, key: this.key, part: this.part, left: this.left, literal: this.literal, at: this.at, blank: this.blank };
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

  private pushContainer(kind: number): void {
    if (this.trying) this.undo.push(this.depth, this.stack[this.depth]);
    this.stack[this.depth++] = kind;
    this.mode = kind === OBJECT ? Mode.ObjectOpen : Mode.ArrayOpen;
  }

  private closeContainer(kind: number): boolean {
    if (this.depth === 0 || this.stack[this.depth - 1] !== kind) return false;
    this.depth--;
    this.mode = this.depth === 0 ? Mode.Done : Mode.AfterValue;
    return true;
  }

  /** A value starting with byte b (after whitespace was skipped). */
  private startValue(b: number): boolean {
    if (b === 0x7b) return this.pushContainer(OBJECT), true;
    if (b === 0x5b) return this.pushContainer(ARRAY), true;
    if (b === 0x22) {
      this.mode = Mode.String;
      this.key = false;
      return true;
    }
    if (b === 0x2d || isDigit(b)) {
      this.mode = Mode.Number;
      this.part = b === 0x2d ? NumberPart.Minus : b === 0x30 ? NumberPart.Zero : NumberPart.Int;
      return true;
    }
    const lit = LITERALS.findIndex((w) => w[0] === b);
    if (lit < 0) return false;
    this.mode = Mode.Literal;
    this.literal = lit;
    this.at = 1;
    return true;
  }

  private step(b: number): boolean {
    const inText = this.mode === Mode.String || this.mode === Mode.Escape || this.mode === Mode.Hex;
    if (!inText && isSpace(b) && this.mode !== Mode.Start && this.mode !== Mode.Done) {
      // Whitespace between JSON tokens (it also ends a number or a literal's value).
      if (this.mode === Mode.Number && !this.numberComplete()) return false;
      if (this.mode === Mode.Literal) return false;
      if (this.mode === Mode.Number) this.mode = Mode.AfterValue;
      return ++this.blank <= MAX_BLANK;
    }
    this.blank = 0;
    switch (this.mode) {
      case Mode.Start:
        return b === 0x7b && (this.pushContainer(OBJECT), true);
      case Mode.ObjectOpen:
      case Mode.ObjectKey:
        if (b === 0x22) {
          this.mode = Mode.String;
          this.key = true;
          return true;
        }
        return this.mode === Mode.ObjectOpen && b === 0x7d && this.closeContainer(OBJECT);
      case Mode.Colon:
        if (b !== 0x3a) return false;
        this.mode = Mode.Value;
        return true;
      case Mode.Value:
        return this.startValue(b);
      case Mode.ArrayOpen:
        return b === 0x5d ? this.closeContainer(ARRAY) : this.startValue(b);
      case Mode.AfterValue:
        return this.afterValue(b);
      case Mode.String:
        return this.inString(b);
      case Mode.Escape:
        if (b === 0x75) {
          this.mode = Mode.Hex;
          this.left = 4;
          return true;
        }
        if (!'"\\/bfnrt'.includes(String.fromCharCode(b))) return false;
        this.mode = Mode.String;
        return true;
      case Mode.Hex:
        if (!isHex(b)) return false;
        if (--this.left === 0) this.mode = Mode.String;
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

  private afterValue(b: number): boolean {
    const inObject = this.stack[this.depth - 1] === OBJECT;
    if (b === 0x2c) {
      this.mode = inObject ? Mode.ObjectKey : Mode.Value;
      return true;
    }
    return inObject ? b === 0x7d && this.closeContainer(OBJECT) : b === 0x5d && this.closeContainer(ARRAY);
  }

  private inString(b: number): boolean {
    if (this.left > 0) {
      // Inside a multi-byte UTF-8 character.
      if (b < 0x80 || b > 0xbf) return false;
      this.left--;
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
    const tail = utf8Tail(b);
    if (tail < 0) return false;
    this.left = tail;
    return true;
  }

  private inNumber(b: number): boolean {
    const digit = isDigit(b);
    switch (this.part) {
      case NumberPart.Minus:
        if (!digit) return false;
        this.part = b === 0x30 ? NumberPart.Zero : NumberPart.Int;
        return true;
      case NumberPart.Zero:
      case NumberPart.Int:
        if (digit && this.part === NumberPart.Int) return true;
        if (b === 0x2e) return (this.part = NumberPart.Dot), true;
        if (b === 0x65 || b === 0x45) return (this.part = NumberPart.E), true;
        break;
      case NumberPart.Dot:
        return digit && ((this.part = NumberPart.Frac), true);
      case NumberPart.Frac:
        if (digit) return true;
        if (b === 0x65 || b === 0x45) return (this.part = NumberPart.E), true;
        break;
      case NumberPart.E:
        if (b === 0x2b || b === 0x2d) return (this.part = NumberPart.ESign), true;
        return digit && ((this.part = NumberPart.Exp), true);
      case NumberPart.ESign:
        return digit && ((this.part = NumberPart.Exp), true);
      case NumberPart.Exp:
        if (digit) return true;
        break;
    }
    // The number ended (it was complete: Zero, Int, Frac or Exp); this byte follows the value.
    if (!this.numberComplete()) return false;
    this.mode = Mode.AfterValue;
    return this.afterValue(b);
  }

  private numberComplete(): boolean {
    return this.part === NumberPart.Zero || this.part === NumberPart.Int || this.part === NumberPart.Frac || this.part === NumberPart.Exp;
  }
}
