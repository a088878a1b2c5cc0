// One running sequence of the continuous batch: its sampler state, stop tokens and stop strings, and
// (only when text is wanted as it comes) incremental detokenization.
import { createRng, sampleToken, type Rng } from "../engine/generate/sampling.js";
import { StopMatcher } from "../engine/generate/stop.js";
import { createDecodeStream, type TextTokenizer } from "../engine/tokenizer/tokenizer.js";

type FloatArray = Float32Array | Float64Array;

export type SeqRequest = {
  id: string;
  tokens: number[];
  /** The adapter (a PEFT folder on local disk) or null for the base model. */
  adapter: { id: string; dir: string } | null;
  maxTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  /** Token ids that end the sequence (the tokenizer's EOS ids by default). */
  stopTokens?: number[];
  /** Text is wanted token by token (streaming); otherwise, without stop strings, it is decoded once at the end. */
  stream?: boolean;
};

export type SeqResult = { tokens: number[]; text: string; finishReason: FinishReason; promptTokens: number; completionTokens: number };

export type FinishReason = "stop" | "length";

export class Sequence {
  readonly out: number[] = [];
  done = false;
  private reason: FinishReason = "length";
  private readonly rng: Rng;
  private readonly stops: Set<number>;
  private readonly matcher: StopMatcher;
  private readonly detok: ReturnType<typeof createDecodeStream> | null;
  private text = "";

  constructor(
    readonly req: SeqRequest,
    /** The LoRA slot its adapter sits in (0 = base model). */
    readonly slot: number,
    private readonly tokenizer: Pick<TextTokenizer, "decode"> | null,
  ) {
    this.rng = createRng(req.seed ?? 0);
    this.stops = new Set(req.stopTokens ?? []);
    this.matcher = new StopMatcher(req.stop ?? []);
    // Incremental detokenization costs two decodes per token: only when text is needed as it comes.
    this.detok = tokenizer && (req.stream || req.stop?.length) ? createDecodeStream(tokenizer) : null;
  }

  /** Samples the next token from this row's logits; null when it is a stop token (the sequence ends without it). */
  accept(logits: FloatArray): { token: number; text: string } | null {
    const r = this.req;
    const f32 = logits instanceof Float32Array ? logits : Float32Array.from(logits);
    const token = sampleToken(f32, { temperature: r.temperature ?? 0, topK: r.topK, topP: r.topP }, this.rng);
    if (this.stops.has(token)) {
      this.done = true;
      this.reason = "stop";
      return null;
    }
    this.out.push(token);
    let text = "";
    if (this.detok) {
      const res = this.matcher.push(this.detok.push(token));
      text = res.emit;
      this.text += text;
      if (res.stopped) {
        this.done = true;
        this.reason = "stop";
      }
    }
    if (!this.done && this.out.length >= r.maxTokens) this.done = true;
    return { token, text };
  }

  /** The result, and any text held back until the end (a possible stop-string prefix, an unfinished character). */
  finish(): { tail: string; result: SeqResult } {
    let tail = "";
    if (this.detok && !this.matcher.stopped) {
      tail = this.matcher.push(this.detok.flush()).emit + this.matcher.flush();
      this.text += tail;
    } else if (!this.detok && this.tokenizer) {
      this.text = this.tokenizer.decode(this.out);
    }
    const result = { tokens: this.out, text: this.text, finishReason: this.reason, promptTokens: this.req.tokens.length, completionTokens: this.out.length };
    return { tail, result };
  }
}
