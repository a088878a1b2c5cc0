// TagScanner finds a tag in text fed a byte at a time exactly where indexOf finds it, self-overlapping tags included.
import { describe, expect, it } from "vitest";
import { TagScanner } from "../../../../gpu-runner/src/engine/generate/bytes.js";

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Where the scanner first completes the tag (the index just past it), or −1. */
function firstEnd(tag: string, text: string): number {
  const scanner = new TagScanner(utf8(tag));
  let m = 0;
  const bytes = utf8(text);
  for (let i = 0; i < bytes.length; i++) if ((m = scanner.next(m, bytes[i])) === tag.length) return i + 1;
  return -1;
}

describe("TagScanner", () => {
  it("agrees with indexOf on random texts, for tags that overlap themselves", () => {
    let s = 7;
    const rnd = (n: number) => (s = (s * 1103515245 + 12345) & 0x7fffffff) % n;
    for (const tag of ["<tool_call>", "aab", "abab", "aaaa", "abcab"]) {
      for (let k = 0; k < 500; k++) {
        const text = Array.from({ length: rnd(30) }, () => "ab<c"[rnd(4)]).join("") + (rnd(2) ? tag : "");
        const at = text.indexOf(tag);
        expect(firstEnd(tag, text), `${tag} in ${text}`).toBe(at < 0 ? -1 : at + tag.length);
      }
    }
  });

  it("goes on after a match, finding the next one", () => {
    const scanner = new TagScanner(utf8("aa"));
    let m = 0;
    const ends: number[] = [];
    utf8("aaa").forEach((b, i) => (m = scanner.next(m, b)) === 2 && ends.push(i));
    expect(ends).toEqual([1, 2]);
  });
});
