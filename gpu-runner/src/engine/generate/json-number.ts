// A JSON number (RFC 8259 §6) read a byte at a time for the JSON-mode recognizer (json-grammar.ts): where in
// the number the last byte left it, and its digits counted against json-limits.ts's limits.
import { isDigit } from "./json-bytes.js";
import { numberFits } from "./json-limits.js";

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

/** The number being read: its part, and its digits in the integer part, fraction and exponent. */
export type JsonNumber = { part: NumberPart; digits: [number, number, number] };

/** Whether byte b starts a number (- or a digit). */
export const startsNumber = (b: number) => b === 0x2d || isDigit(b);

/** The number that byte b (see startsNumber) starts. */
export function numberStart(b: number): JsonNumber {
  return { part: b === 0x2d ? NumberPart.Minus : b === 0x30 ? NumberPart.Zero : NumberPart.Int, digits: [b === 0x2d ? 0 : 1, 0, 0] };
}

/** An independent copy, for a recognizer's snapshot. */
export const copyNumber = (n: JsonNumber): JsonNumber => ({ part: n.part, digits: [...n.digits] });

/** Counts a digit of the integer part (0), fraction (1) or exponent (2); false past the limits. */
function digit(n: JsonNumber, where: 0 | 1 | 2): boolean {
  n.digits[where]++;
  return numberFits(...n.digits);
}

/**
 * Reads byte b into `n`: true when b continues the number, false when it breaks it (or the limits), "ended"
 * when the number was complete and b follows the value.
 */
export function numberByte(n: JsonNumber, b: number): boolean | "ended" {
  const isDigitByte = isDigit(b);
  const exponent = b === 0x65 || b === 0x45;
  switch (n.part) {
    case NumberPart.Minus:
      if (!isDigitByte) return false;
      n.part = b === 0x30 ? NumberPart.Zero : NumberPart.Int;
      return digit(n, 0);
    case NumberPart.Dot:
      if (!isDigitByte) return false;
      n.part = NumberPart.Frac;
      return digit(n, 1);
    case NumberPart.E:
      if (b === 0x2b || b === 0x2d) {
        n.part = NumberPart.ESign;
        return true;
      }
    // falls through: a digit right after e
    case NumberPart.ESign:
      if (!isDigitByte) return false;
      n.part = NumberPart.Exp;
      return digit(n, 2);
    case NumberPart.Int:
      if (isDigitByte) return digit(n, 0);
      break;
    case NumberPart.Frac:
      if (isDigitByte) return digit(n, 1);
      break;
    case NumberPart.Exp:
      if (isDigitByte) return digit(n, 2);
  }
  if (b === 0x2e && (n.part === NumberPart.Zero || n.part === NumberPart.Int)) {
    n.part = NumberPart.Dot;
    return true;
  }
  if (exponent && n.part !== NumberPart.Exp) {
    n.part = NumberPart.E;
    return true;
  }
  // The number is complete (Zero, Int, Frac or Exp); this byte follows the value.
  return "ended";
}

/** Whether the number read so far is a whole number (not stopped after -, . e or a sign). */
export function numberComplete(n: JsonNumber): boolean {
  return n.part === NumberPart.Zero || n.part === NumberPart.Int || n.part === NumberPart.Frac || n.part === NumberPart.Exp;
}
