// How json-schema-recognizer.ts reads one scalar value, a byte at a time: a string (escapes, strict UTF-8),
// a number (an integer where the schema says so, within json-limits.ts's digits) or an enum or const value
// (a range of its sorted JSON texts, narrowed per byte). Pure steps on the state of the value being read.
import { isDigit, isHex, isShortEscape, utf8Lead } from "./json-bytes.js";
import { numberFits } from "./json-limits.js";
import { narrow, type SortedNames } from "./json-schema-keys.js";

/** Inside a string value: after a backslash, within \uXXXX, or within a UTF-8 character (and the range its next byte must fall in). */
export type StringLeaf = { kind: "string"; escape: boolean; hex: number; utf8Left: number; lo: number; hi: number };
export type NumberLeaf = { kind: "number"; integer: boolean; part: "minus" | "zero" | "int" | "dot" | "frac" | "e" | "esign" | "exp"; int: number; frac: number; exp: number };
/** Inside an enum or const value: `at` bytes matched by the texts [lo, hi) of `texts` (the complete one sorts first). */
export type LiteralLeaf = { kind: "literal"; texts: SortedNames; lo: number; hi: number; at: number };

/** Byte b inside a string: whether it continues the string, or "closed" for the closing quote. */
export function stringByte(l: StringLeaf, b: number): boolean | "closed" {
  if (l.hex > 0) {
    if (!isHex(b)) return false;
    l.hex--;
    return true;
  }
  if (l.escape) {
    l.escape = false;
    if (b === 0x75) {
      l.hex = 4;
      return true;
    }
    return isShortEscape(b);
  }
  if (l.utf8Left > 0) {
    if (b < l.lo || b > l.hi) return false;
    l.utf8Left--;
    l.lo = 0x80;
    l.hi = 0xbf;
    return true;
  }
  if (b === 0x22) return "closed";
  if (b === 0x5c) {
    l.escape = true;
    return true;
  }
  if (b < 0x20) return false;
  if (b < 0x80) return true;
  const lead = utf8Lead(b);
  if (!lead) return false;
  [l.utf8Left, l.lo, l.hi] = [lead.left, lead.lo, lead.hi];
  return true;
}

/** Byte b inside a number: whether it continues the number, or "ended" when the number is complete and b comes after it. */
export function numberByte(l: NumberLeaf, b: number): boolean | "ended" {
  const digit = isDigit(b);
  const next = numberStep(l, b, digit) ?? (digit && (l.part === "int" || l.part === "frac" || l.part === "exp") ? l.part : null);
  if (next !== null) {
    l.part = next;
    if (!digit) return true;
    // Digits within json-limits.ts's limits, so that the number parses to what it says.
    if (next === "zero" || next === "int") l.int++;
    else if (next === "frac") l.frac++;
    else l.exp++;
    return numberFits(l.int, l.frac, l.exp);
  }
  if (!numberComplete(l)) return false;
  return "ended";
}

/** The number's next part after byte b, or null when b does not move it on. */
function numberStep(l: NumberLeaf, b: number, digit: boolean): NumberLeaf["part"] | null {
  const exponent = b === 0x65 || b === 0x45;
  switch (l.part) {
    case "minus":
      return digit ? (b === 0x30 ? "zero" : "int") : null;
    case "zero":
    case "int":
      if (l.integer) return null;
      return b === 0x2e ? "dot" : exponent ? "e" : null;
    case "dot":
      return digit ? "frac" : null;
    case "frac":
      return exponent ? "e" : null;
    case "e":
      return b === 0x2b || b === 0x2d ? "esign" : digit ? "exp" : null;
    case "esign":
      return digit ? "exp" : null;
    case "exp":
      return null;
  }
}

export function numberComplete(l: NumberLeaf): boolean {
  return l.part === "zero" || l.part === "int" || l.part === "frac" || l.part === "exp";
}

/** Whether some text of the literal's range goes on with byte `b` (two binary searches, not a scan of the enum). */
export function literalGoesOn(l: LiteralLeaf, b: number): boolean {
  const [lo, hi] = narrow(l.texts, l.lo, l.hi, l.at, b);
  return lo < hi;
}

/** Every text of the range is complete, so nothing can extend the value (a longer one would sort last). */
export function literalEnds(l: LiteralLeaf): boolean {
  return l.texts.bytes[l.hi - 1].length === l.at;
}

/** A text of the range is all of the bytes read (it sorts first: every text in the range starts with them). */
export function literalComplete(l: LiteralLeaf): boolean {
  return l.texts.bytes[l.lo].length === l.at;
}
