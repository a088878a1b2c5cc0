// tool_choice "auto" with a grammar on the calls. The model writes what text it likes until it opens a call
// with its template's opening tag (<tool_call>); from there the call follows the tools' grammar up to the
// closing tag (call-block.ts). After a call only another call (when parallel calls are allowed) or the end
// may come, with at most two spaces or newlines between: what the API reads as calls
// (api/src/inference/tool-calls.ts). A format whose call is the whole answer (Llama 3.1's JSON) has no tags:
// a `{` before any other text (whitespace and a spelled-out <|python_tag|> may precede it) opens the call,
// and other text rules one out. Mistral's opening tag, [TOOL_CALLS], is followed by one JSON array of every
// call (call-list.ts), with no closing tag. Mistral's newer calls (`[TOOL_CALLS]name[ARGS]{…}`, named-call.ts)
// have no closing tag either, but each opens with its own [TOOL_CALLS], so more may follow (`reopens`). Like JSON
// mode, the model's pick is checked first and the vocabulary masked only on a refusal.
import { CallBlock, type CloneableRecognizer } from "./call-block.js";
import { JsonMode, type JsonVocabulary } from "./json-mode.js";
import { TagScanner, equalBytes as equal } from "./bytes.js";
import { maskRefused } from "./mask.js";

export type AutoCallsSpec = {
  /** The tags around a call; empty with `leading`. */
  opening: Uint8Array;
  closing: Uint8Array;
  /** The call is the whole answer: a `{` opens it while nothing but whitespace came before it (a leading call ends the answer). */
  leading?: boolean;
  /** With `leading`: text that may come between the whitespace and the `{` (Llama's `<|python_tag|>` spelled out), once. */
  leadingTag?: Uint8Array;
  /** A fresh recognizer of one call's JSON (`{"name", "arguments"}` for the tools; Mistral's: an array of them). */
  grammar: () => CloneableRecognizer;
  /** Whether another call may follow a call; otherwise the answer ends with the first. */
  parallel: boolean;
  /** Calls without a closing tag that each open with their own opening tag: another may follow (when `parallel`). */
  reopens?: boolean;
  /**
   * Tags written inside a call before its JSON (Mistral's [ARGS]): special tokens that spell one may come there,
   * where the call's grammar says it takes them (CloneableRecognizer.takesTags), and nowhere else in the call.
   */
  callTags?: Uint8Array[];
  /** The opening tag is in the prompt (a forced call in the template's format): the answer is the call, from its first token. */
  opened?: boolean;
  /**
   * Tokens the text leaves out (sequence.ts hiddenTokens): outside a call they write nothing, so the opening
   * tag goes on across them as the text the API reads does; like any token writing nothing, none after a call.
   */
  hidden?: ReadonlySet<number>;
};

/** The most spaces or newlines between two calls. */
const MAX_BETWEEN = 2;
const OPENING_BRACE = 0x7b;
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/**
 * Where writing some bytes outside a call leads: still outside (how far the opening tag and, after a call, the
 * spaces have got; with a leading call, whether text began), or into a call.
 */
type Outside = { matched: number; spaces: number; began: boolean } | { call: CallBlock };

export class AutoToolCalls {
  /** text: before any call; call: inside one; after: a call has closed. */
  private phase: "text" | "call" | "after" = "text";
  /** Bytes of the opening tag the text written last has matched (a prefix of it). */
  private matched = 0;
  /** After a call: the spaces and newlines written since. */
  private spaces = 0;
  /** With a leading call: text other than whitespace was written, so no call can open any more. */
  private began = false;
  /** Finds the opening tag in text (none with a leading call). */
  private readonly openingScanner: TagScanner | null;
  /** Inside a call: its grammar, and JSON mode's checks and mask over it. */
  private call: { block: CallBlock; mode: JsonMode } | null = null;
  /** Inside a call: the stop and special tokens are refused, save one that spells the closing tag or a call tag. */
  private readonly callVocab: JsonVocabulary;
  /** The special tokens that spell one of the call tags: allowed only where the call takes its tags. */
  private readonly tagTokens: ReadonlySet<number>;

  /** `vocab.blocked` holds the stop and special tokens; `stops`, the stop tokens. */
  constructor(
    private readonly vocab: JsonVocabulary,
    private readonly stops: ReadonlySet<number>,
    private readonly spec: AutoCallsSpec,
  ) {
    // Without a closing tag, no special token may end a call (an empty closing would match those that write nothing).
    const closes = (t: number) => spec.closing.length > 0 && equal(vocab.tokenBytes(t), spec.closing);
    const spellsTag = (t: number) => t < vocab.vocabSize && !stops.has(t) && (spec.callTags ?? []).some((tag) => equal(vocab.tokenBytes(t), tag));
    this.tagTokens = new Set([...vocab.blocked].filter(spellsTag));
    this.callVocab = { ...vocab, blocked: new Set([...vocab.blocked].filter((t) => !closes(t) && !this.tagTokens.has(t))) };
    this.openingScanner = spec.leading ? null : new TagScanner(spec.opening);
    if (spec.opened) this.openCall(new CallBlock(spec.grammar(), spec.closing));
  }

  /** Whether a call is open: its text must not be cut (sequence.ts then leaves stop strings unmatched). */
  get inCall(): boolean {
    return this.call !== null;
  }

  /** Whether token `t` may come next. */
  allows(t: number): boolean {
    if (this.call) return (this.call.block.takesTags || !this.tagTokens.has(t)) && this.call.mode.allows(t);
    if (this.stops.has(t)) return this.phase === "text" || this.matched === 0;
    if (t >= this.vocab.vocabSize || this.spec.hidden?.has(t)) return this.phase === "text";
    const bytes = this.vocab.tokenBytes(t);
    // After a call, a token that writes nothing could be repeated forever.
    if (bytes.length === 0) return this.phase === "text";
    return this.outside(bytes) !== null;
  }

  /** Masks, in place, the tokens that cannot come next; throws when none can. */
  mask(logits: Float32Array): void {
    if (this.call) return this.maskCall(this.call, logits);
    maskRefused(logits, (t) => this.allows(t), "tool calls: no token of this model's vocabulary continues the answer");
  }

  /** Feeds the token taken (one allows() or mask() let through; never a stop token); true when the answer is complete. */
  take(t: number): boolean {
    if (this.call) return this.call.mode.take(t) && this.closeCall(this.call.block);
    if (t >= this.vocab.vocabSize || this.spec.hidden?.has(t)) return false;
    const next = this.outside(this.vocab.tokenBytes(t));
    if (!next) throw new Error(`tool calls: token ${t} does not continue the answer`);
    if (!("call" in next)) {
      this.matched = next.matched;
      this.spaces = next.spaces;
      this.began = next.began;
      return false;
    }
    this.openCall(next.call);
    return next.call.done && this.closeCall(next.call);
  }

  private openCall(block: CallBlock): void {
    this.phase = "call";
    this.call = { block, mode: new JsonMode(this.callVocab, block) };
  }

  /** JSON mode's mask inside a call, and the call tags' special tokens off where the call does not take them. */
  private maskCall(call: { block: CallBlock; mode: JsonMode }, logits: Float32Array): void {
    call.mode.mask(logits);
    if (call.block.takesTags || this.tagTokens.size === 0) return;
    for (const t of this.tagTokens) if (t < logits.length) logits[t] = -Infinity;
    if (!logits.some((l) => l !== -Infinity)) throw new Error("tool calls: no token of this model's vocabulary continues the call");
  }

  /** The call has closed (the token that closed it may have written spaces after it, which count as between calls). */
  private closeCall(block: CallBlock): boolean {
    this.call = null;
    this.phase = "after";
    this.matched = 0;
    this.spaces = block.spacesAfter;
    // A call without a closing tag (Llama 3.1's whole answer, Mistral's array of every call) is the last, unless
    // each call opens with its own tag (Mistral's newer calls).
    return !this.spec.parallel || (this.spec.closing.length === 0 && !this.spec.reopens);
  }

  /** Where `bytes` lead outside a call, or null when they may not come; byte by byte, without copies (a mask tries every token). */
  private outside(bytes: Uint8Array): Outside | null {
    if (this.spec.leading) return this.outsideLeading(bytes);
    const { opening } = this.spec;
    let m = this.matched;
    let spaces = this.spaces;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (this.phase === "text") m = this.openingScanner!.next(m, b);
      else if (m === 0 && isSpace(b)) {
        if (++spaces > MAX_BETWEEN) return null;
        continue;
      } else if (opening[m] === b) m++;
      else return null;
      if (m === opening.length) {
        // Spaces after a closing tag count as between calls; without one (Mistral's array) the answer ends there.
        const call = new CallBlock(this.spec.grammar(), this.spec.closing, this.spec.closing.length > 0 ? MAX_BETWEEN : 0);
        return call.push(bytes.subarray(i + 1)) ? { call } : null;
      }
    }
    return { matched: m, spaces, began: false };
  }

  /**
   * outside() for a call that is the whole answer: its `{` is the JSON's own, and after it only the end may come.
   * `matched` counts the bytes of the leading tag written (whitespace may come before it whole and after it).
   */
  private outsideLeading(bytes: Uint8Array): Outside | null {
    const text = { matched: 0, spaces: 0, began: true };
    if (this.began) return text;
    const tag = this.spec.leadingTag ?? new Uint8Array();
    let m = this.matched;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      const inTag = m > 0 && m < tag.length;
      if (inTag || (m === 0 && tag.length > 0 && b === tag[0])) {
        if (b !== tag[m]) return text;
        m++;
        continue;
      }
      if (isSpace(b)) continue;
      if (b !== OPENING_BRACE) return text;
      const call = new CallBlock(this.spec.grammar(), this.spec.closing);
      return call.push(bytes.subarray(i)) ? { call } : null;
    }
    return { matched: m, spaces: 0, began: false };
  }
}
