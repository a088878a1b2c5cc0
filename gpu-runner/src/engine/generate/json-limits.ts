// Where JSON allows more than a model should write, the recognizers (json-grammar.ts, its numbers in json-number.ts, and
// json-schema-recognizer.ts) allow less. Whitespace, so that a model cannot spend its tokens on it: at most
// MAX_LEADING bytes of it before the object (SentencePiece spells "{" after a space), between JSON tokens at
// most MAX_NEWLINES newlines in a row and at most MAX_INDENT spaces or tabs after each (room for pretty
// printing). Numbers, so that they parse to what they say: at most MAX_INT_DIGITS digits before the point
// (an exact double), MAX_SIGNIFICANT_DIGITS in all, MAX_EXP_DIGITS in the exponent (never Infinity).

/** Whitespace bytes allowed before the object; newlines in a row, and spaces or tabs after each, between JSON tokens. */
export const MAX_LEADING = 2;
export const MAX_NEWLINES = 2;
export const MAX_INDENT = 64;

export const MAX_INT_DIGITS = 15;
export const MAX_SIGNIFICANT_DIGITS = 17;
export const MAX_EXP_DIGITS = 2;

/** Whether a number with these many digits in its integer part, fraction and exponent is within the limits. */
export const numberFits = (int: number, frac: number, exp: number) => int <= MAX_INT_DIGITS && int + frac <= MAX_SIGNIFICANT_DIGITS && exp <= MAX_EXP_DIGITS;
