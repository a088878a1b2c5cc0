// OpenAI's JSON mode and Structured Outputs for one sequence: the token sampled must continue the JSON object
// (json-grammar.ts, or json-schema.ts for a schema); when the model's pick does not, the step samples again
// among the tokens that do (all others masked to −∞). The sequence ends when the object closes.
import { JsonObjectRecognizer } from "./json-grammar.js";

/** Checks bytes against a JSON grammar: any object (JsonObjectRecognizer) or one that follows a schema (JsonSchemaRecognizer). */
export type JsonRecognizer = {
  readonly done: boolean;
  /**
   * Inside a string whose content is free (not a key or enum of a schema), between characters: then every
   * "string-safe" token (see stringSafeTokens) continues the JSON, without trying it.
   */
  readonly inPlainString: boolean;
  push(bytes: Uint8Array): boolean;
  accepts(bytes: Uint8Array): boolean;
};

export type JsonVocabulary = {
  tokenBytes(id: number): Uint8Array;
  /** One more than the largest token id the tokenizer knows (the model's vocabulary may be padded past it). */
  vocabSize: number;
  /** Tokens that never belong in the JSON: the stop tokens (until it closes) and special tokens. */
  blocked: ReadonlySet<number>;
};

export class JsonMode {
  private readonly firstByte = new Int8Array(256);

  constructor(
    private readonly vocab: JsonVocabulary,
    private readonly json: JsonRecognizer,
  ) {}

  /** Whether token `t` may come next. */
  allows(t: number): boolean {
    const bytes = this.usable(t);
    if (bytes === null) return false;
    return (this.json.inPlainString && stringSafeTokens(this.vocab)[t] === 1) || this.json.accepts(bytes);
  }

  /** Masks, in place, the tokens that cannot come next; throws when none can. */
  mask(logits: Float32Array): void {
    // Outside strings most tokens fail on their first byte: try each byte value once (0: not tried, 1: fits, −1: not).
    this.firstByte.fill(0);
    // Inside a string most tokens are plain text, known to fit without trying them.
    const safe = this.json.inPlainString ? stringSafeTokens(this.vocab) : null;
    let any = false;
    for (let t = 0; t < logits.length; t++) {
      if (logits[t] === -Infinity) continue;
      if ((safe !== null && safe[t] === 1 && this.usable(t) !== null) || this.fits(t)) any = true;
      else logits[t] = -Infinity;
    }
    if (!any) throw new Error("response_format: no token of this model's vocabulary continues the JSON");
  }

  /** Feeds the token taken (one allows() or mask() let through); true once the object has closed. */
  take(token: number): boolean {
    const bytes = this.usable(token);
    if (!bytes || !this.json.push(bytes)) throw new Error(`response_format: token ${token} does not continue the JSON`);
    return this.json.done;
  }

  /** The token's bytes, or null for a token that never fits (blocked, unknown to the tokenizer, or empty: it would add nothing, forever). */
  private usable(t: number): Uint8Array | null {
    if (t >= this.vocab.vocabSize || this.vocab.blocked.has(t)) return null;
    const bytes = this.vocab.tokenBytes(t);
    return bytes.length > 0 ? bytes : null;
  }

  private fits(t: number): boolean {
    const bytes = this.usable(t);
    if (!bytes) return false;
    const b = bytes[0];
    if (this.firstByte[b] === 0) this.firstByte[b] = this.json.accepts(bytes.subarray(0, 1)) ? 1 : -1;
    if (this.firstByte[b] < 0) return false;
    return bytes.length === 1 || this.json.accepts(bytes);
  }
}

/** Per tokenizer (its tokenBytes function): 1 for the tokens that continue any string between characters. */
const safeByTokenizer = new WeakMap<JsonVocabulary["tokenBytes"], Uint8Array>();

/**
 * Tokens without `"`, `\\` or control bytes whose bytes are well-formed UTF-8 so far (json-grammar.ts's rules,
 * applied by feeding each to a recognizer inside a string): wherever a string may go on, they do. Computed
 * once per tokenizer.
 */
export function stringSafeTokens(vocab: Pick<JsonVocabulary, "tokenBytes" | "vocabSize">): Uint8Array {
  const known = safeByTokenizer.get(vocab.tokenBytes);
  if (known && known.length === vocab.vocabSize) return known;
  const safe = new Uint8Array(vocab.vocabSize);
  const opening = new TextEncoder().encode('{"');
  for (let t = 0; t < vocab.vocabSize; t++) {
    const bytes = vocab.tokenBytes(t);
    if (bytes.length === 0 || bytes.includes(0x22) || bytes.includes(0x5c)) continue;
    const json = new JsonObjectRecognizer();
    json.push(opening);
    safe[t] = json.push(bytes) ? 1 : 0;
  }
  safeByTokenizer.set(vocab.tokenBytes, safe);
  return safe;
}
