// Banned text: a token is refused exactly when the bytes written so far and its own would hold the banned text,
// also across tokens; the mask keeps every other token.
import { describe, expect, it } from "vitest";
import { BannedText } from "../../../../gpu-runner/src/engine/generate/banned-text.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const tokens = ["<tool_call>", "<tool", "_call>", "<", "tool_call>", "hello", " <t", "ool_call", ">", "x"];
const vocab = { tokenBytes: (t: number) => utf8(tokens[t]), vocabSize: tokens.length };
const id = (s: string) => tokens.indexOf(s);

describe("BannedText", () => {
  it("refuses a token that writes the banned text, whole or finishing it, and nothing else", () => {
    const b = new BannedText(vocab, utf8("<tool_call>"));
    expect(b.allows(id("<tool_call>"))).toBe(false);
    expect(b.allows(id("<tool"))).toBe(true);
    b.take(id("<tool"));
    expect(b.allows(id("_call>"))).toBe(false);
    expect(b.allows(id("hello"))).toBe(true);
    b.take(id("hello"));
    expect(b.allows(id("_call>"))).toBe(true);
    // Over three tokens.
    b.take(id(" <t"));
    b.take(id("ool_call"));
    expect(b.allows(id(">"))).toBe(false);
    expect(b.allows(id("x"))).toBe(true);
    // Padded ids past the tokenizer write nothing.
    expect(b.allows(tokens.length + 3)).toBe(true);
  });

  it("reads past hidden tokens, which write nothing in the answer's text", () => {
    const hidden = new Set([id("x")]);
    const b = new BannedText(vocab, utf8("<tool_call>"), hidden);
    b.take(id("<tool"));
    expect(b.allows(id("x"))).toBe(true);
    b.take(id("x"));
    expect(b.allows(id("_call>"))).toBe(false);
    // Without them, "x" is text and breaks the tag.
    const plain = new BannedText(vocab, utf8("<tool_call>"));
    plain.take(id("<tool"));
    plain.take(id("x"));
    expect(plain.allows(id("_call>"))).toBe(true);
    // A hidden token that spells the banned text itself (a tokenizer that marks <tool_call> special) still opens a call.
    const tagHidden = new BannedText(vocab, utf8("<tool_call"), new Set([id("<tool_call>")]));
    expect(tagHidden.allows(id("<tool_call>"))).toBe(false);
  });

  it("masks exactly the refused tokens", () => {
    const b = new BannedText(vocab, utf8("<tool_call>"));
    b.take(id("<"));
    const logits = new Float32Array(tokens.length);
    b.mask(logits);
    expect(tokens.filter((_, t) => logits[t] === -Infinity)).toEqual(["<tool_call>", "tool_call>"]);
  });
});
