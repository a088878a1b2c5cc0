// The byte classes of JSON text (RFC 8259) and the UTF-8 rules (RFC 3629) the JSON recognizers read strings
// by: strict, with no overlong forms, surrogates or code points past U+10FFFF inside strings.

export const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
export const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
export const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

/** A byte that may follow a backslash in a string, other than the `u` of \uXXXX. */
export const isShortEscape = (b: number) => '"\\/bfnrt'.includes(String.fromCharCode(b));

/**
 * A UTF-8 lead byte's continuation bytes and the range the first of them must fall in (RFC 3629), or null for
 * a byte that cannot start a character. E0: no overlong forms; ED: no surrogates; F0: no overlong forms; F4:
 * nothing past U+10FFFF.
 */
export function utf8Lead(b: number): { left: number; lo: number; hi: number } | null {
  const left = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : 0;
  if (left === 0) return null;
  return { left, lo: b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80, hi: b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf };
}
