// OpenAI's JSON mode for one sequence: before each sample, every token whose bytes would break the JSON
// object (or end the sequence before it closes) gets a −∞ logit; the sequence ends when the object closes.
import { JsonObjectRecognizer } from "./json-grammar.js";

export class JsonMode {
  private readonly json = new JsonObjectRecognizer();
  private readonly firstByte = new Int8Array(256);

  constructor(
    private readonly tokenBytes: (id: number) => Uint8Array,
    private readonly stopTokens: ReadonlySet<number>,
  ) {}

  /** Masks, in place, the tokens that cannot continue the JSON; throws when none can. */
  mask(logits: Float32Array): void {
    // Most tokens fail on their first byte: try each byte value once (0: not tried, 1: fits, −1: does not).
    this.firstByte.fill(0);
    let any = false;
    for (let t = 0; t < logits.length; t++) {
      if (logits[t] === -Infinity) continue;
      if (this.fits(t)) any = true;
      else logits[t] = -Infinity;
    }
    if (!any) throw new Error("response_format json_object: no token of this model's vocabulary continues the JSON");
  }

  /** Feeds the token taken; true once the object has closed. */
  take(token: number): boolean {
    this.json.push(this.tokenBytes(token));
    return this.json.done;
  }

  private fits(t: number): boolean {
    if (this.stopTokens.has(t)) return false;
    const bytes = this.tokenBytes(t);
    // A token without bytes would add nothing, forever.
    if (bytes.length === 0) return false;
    const b = bytes[0];
    if (this.firstByte[b] === 0) this.firstByte[b] = this.json.accepts(bytes.subarray(0, 1)) ? 1 : -1;
    if (this.firstByte[b] < 0) return false;
    return bytes.length === 1 || this.json.accepts(bytes);
  }
}
