// The "id" a call in Mistral's v3 array may carry beside its name and arguments (`{"name": …, "arguments": …, "id":
// "a1B2c3D4e"}`, as the template writes calls in history): held to the 9 ASCII letters or digits Mistral's templates
// want, which the Structured Outputs subset the tools' grammar is compiled from cannot say (it has no `pattern`).
// Wraps one call's recognizer: the call's JSON is the grammar's to check; this only follows where the call
// object's own "id" value is, and refuses there any byte but a letter or digit, and a closing quote before the 9th.
import type { CloneableRecognizer } from "./call-block.js";

const ID_LENGTH = 9;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const ID_KEY = [0x69, 0x64]; // id

const isAlnum = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);

/**
 * Where the call's JSON stands, only as far as the id needs: nesting depth (1: the call object's own members),
 * inside a string (after a backslash), and at depth 1 whether a key comes next, how much of the key being read
 * matches "id", whether the value now due is the id's, and inside the id how many characters it has.
 */
type Place = { depth: number; inString: boolean; escaped: boolean; keyNext: boolean; key: number; idValue: boolean; id: number };

/** Steps `p` over byte `b`; false when `b` would break the id. */
function step(p: Place, b: number): boolean {
  if (p.id >= 0) {
    if (b === QUOTE) {
      if (p.id !== ID_LENGTH) return false;
      p.id = -1;
      return true;
    }
    return isAlnum(b) && ++p.id <= ID_LENGTH;
  }
  if (p.inString) {
    if (p.escaped) p.escaped = false;
    else if (b === BACKSLASH) p.escaped = true;
    else if (b === QUOTE) p.inString = false;
    // A key of the call's own: still "id" so far (the key's own bytes; the quote that ends it leaves `key` at 2).
    else if (p.key >= 0) p.key = p.key < ID_KEY.length && ID_KEY[p.key] === b ? p.key + 1 : -1;
    return true;
  }
  if (b === QUOTE) {
    if (p.depth === 1 && p.idValue) p.id = 0;
    else {
      p.inString = true;
      p.key = p.depth === 1 && p.keyNext ? 0 : -1;
    }
    p.idValue = false;
    return true;
  }
  if (p.depth === 1 && b === COLON) {
    p.idValue = p.key === ID_KEY.length;
    p.keyNext = false;
    p.key = -1;
  } else if (p.depth === 1 && b === COMMA) p.keyNext = true;
  else if (b === 0x7b || b === 0x5b) {
    p.depth++;
    if (p.depth === 1) p.keyNext = true;
    p.idValue = false;
  } else if (b === 0x7d || b === 0x5d) p.depth--;
  return true;
}

export class CallIdCheck implements CloneableRecognizer {
  private place: Place = { depth: 0, inString: false, escaped: false, keyNext: false, key: -1, idValue: false, id: -1 };

  /** `call`: a fresh recognizer of one call object. */
  constructor(private call: CloneableRecognizer) {}

  get done(): boolean {
    return this.call.done;
  }

  /** Inside the id the string is not free: JSON mode must try each token there. */
  get inPlainString(): boolean {
    return this.place.id < 0 && this.call.inPlainString;
  }

  push(bytes: Uint8Array): boolean {
    const p = { ...this.place };
    for (const b of bytes) if (!step(p, b)) return false;
    if (!this.call.push(bytes)) return false;
    this.place = p;
    return true;
  }

  /** Whether `bytes` would continue the call; no copy of the call's grammar (a mask tries every token). */
  accepts(bytes: Uint8Array): boolean {
    const p = { ...this.place };
    for (const b of bytes) if (!step(p, b)) return false;
    return this.call.accepts(bytes);
  }

  clone(): CallIdCheck {
    const c = new CallIdCheck(this.call.clone());
    c.place = { ...this.place };
    return c;
  }
}
