// One generated sequence, token by token: seeded sampling, stop tokens, max tokens, and stop strings over
// incrementally decoded text. Shared by the batch generator (one per row) and the serve scheduler.
import { createRng, type Rng } from "./rng.js";
import { GREEDY_TEMPERATURE, sampleToken } from "./sampling.js";
import { StopMatcher } from "./stop.js";
import { tokenLogprobs, type TokenLogprob } from "./logprobs.js";
import { AutoToolCalls } from "./auto-tool-calls.js";
import { constraintOf, type Constraint } from "./sequence-constraints.js";
import { CONTEXT_TOKENS, createDecodeStream, decodeAfter, type TextTokenizer } from "../tokenizer/tokenizer.js";

export type FinishReason = "stop" | "length";

export type SequenceRequest = {
  tokens: number[];
  maxTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** OpenAI's penalties on the logits of tokens already in the completion: per occurrence, and once. */
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** Token id → bias added to its logit at every step (OpenAI's logit_bias). */
  logitBias?: Record<string, number>;
  seed?: number;
  /** Token ids that end the sequence (not included in the output); default none. */
  stopTokens?: number[];
  /**
   * The text goes on from the prompt's (a completion, not a chat's answer): decoded after the prompt's last
   * tokens, so a SentencePiece answer's first space stays (" Paris" after "The capital is").
   */
  continuesPrompt?: boolean;
  /**
   * Tokens the text leaves out (the special ones, as Hugging Face's skip_special_tokens; serve/hidden-tokens.ts):
   * they stay in `tokens`, usage and logprobs, and stop strings are matched on the text without them, but one that
   * holds such a token's whole text (stop: ["<|im_end|>"], ["done<|im_end|>"]), which that text never shows, on the
   * text with their text in place (stop.ts): it cuts the text there as any stop string does.
   */
  hiddenTokens?: ReadonlySet<number>;
  /** Stop strings (need a tokenizer); the text is cut before the stop string. */
  stop?: string[];
  /**
   * Report each token's log-probability and this many alternatives (0..20); off when undefined. Taken from
   * the logits after logit_bias and penalties, before temperature, top-k, top-p and JSON mode's mask.
   */
  logprobs?: number;
  /** OpenAI's JSON mode: only tokens that continue one JSON object; the sequence ends when it closes (json-mode.ts). */
  json?: boolean;
  /** Structured Outputs: the object follows this JSON Schema (json-schema.ts; implies JSON mode). */
  jsonSchema?: Record<string, unknown>;
  /** Where jsonSchema came from, for its errors (default response_format.json_schema.schema). */
  jsonSchemaPath?: string;
  /** At most one space between JSON tokens (a tool call), instead of JSON mode's whitespace limits. */
  jsonCompact?: boolean;
  /** The object is a call whose "id" member holds 9 letters or digits (Mistral's v3 calls; call-id.ts). */
  jsonCallId?: boolean;
  /** Text the sequence must never write (not with JSON mode); needs a tokenizer that spells tokens. */
  bannedText?: string;
  /** tool_choice "auto" with a grammar on the calls the model writes (auto-tool-calls.ts; not with JSON mode). */
  toolCalls?: AutoCallsRequest;
};

/**
 * Calls written between the template's tags, each a JSON object that follows `jsonSchema` (the tools'
 * `{"name", "arguments"}`, compact spacing); `parallel`: several calls may follow one another. `leading`: no
 * tags, the call is the whole answer (Llama 3.1's), opened by a `{` before any other text but `leadingTag`.
 * `list`: after the opening tag, one JSON array of every call (Mistral's). `named`: each call `name[ARGS]{arguments}`
 * after its own opening tag (Mistral's newer templates; named-call.ts), `callTags` the tags within it, `callIds` whether
 * `[CALL_ID]id` may come before [ARGS] (the template writes call ids). `opened`: the
 * opening tag is in the prompt, the answer is one call (a forced call in the template's format).
 */
export type AutoCallsRequest = { jsonSchema: Record<string, unknown>; jsonSchemaPath: string; opening: string; closing: string; leading?: boolean; leadingTag?: string; list?: boolean; named?: boolean; callTags?: string[]; callIds?: boolean; opened?: boolean; parallel: boolean };

/** What a sequence needs of the tokenizer: text, and for JSON mode each token's bytes and which are special. */
export type SequenceTokenizer = Pick<TextTokenizer, "decode"> & Partial<Pick<TextTokenizer, "tokenBytes" | "vocabSize" | "specialTokenIds">>;

export type SequenceResult = {
  tokens: number[];
  /** The completion's text; "" without a tokenizer. */
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** One entry per token of `tokens` when the request asked for logprobs. */
  logprobs?: TokenLogprob[];
};


export class Sequence<R extends SequenceRequest = SequenceRequest> {
  readonly out: number[] = [];
  /** Set when the sequence ends; callers may also set it (a cancelled request), which keeps reason "length". */
  done = false;
  private reason: FinishReason = "length";
  private readonly rng: Rng;
  private readonly stops: Set<number>;
  private readonly matcher: StopMatcher;
  private readonly detok: ReturnType<typeof createDecodeStream> | null;
  private text = "";
  /** How often each token occurs in the completion so far (only kept when a penalty is set). */
  private readonly seen: Map<number, number> | null;
  private readonly bias: [number, number][];
  private readonly logprobs: TokenLogprob[] | null;
  /** JSON mode's grammar, banned text, or tool calls. */
  private readonly constraint: Constraint | null;

  /**
   * `streamText`: the caller wants each token's text as it comes. Otherwise, unless stop strings or logprobs'
   * text offsets need it, the text is decoded once at the end: incremental detokenization costs two decodes per token.
   */
  constructor(
    readonly req: R,
    private readonly tokenizer: SequenceTokenizer | null,
    o: { streamText: boolean },
  ) {
    this.rng = createRng(req.seed ?? 0);
    this.stops = new Set(req.stopTokens ?? []);
    this.matcher = new StopMatcher(req.stop ?? [], hiddenTexts(req, tokenizer));
    this.detok = tokenizer && (o.streamText || req.stop?.length || req.logprobs !== undefined) ? createDecodeStream(tokenizer, { context: this.context }) : null;
    this.seen = req.frequencyPenalty || req.presencePenalty ? new Map() : null;
    this.bias = Object.entries(req.logitBias ?? {}).map(([token, b]) => [Number(token), b]);
    this.logprobs = req.logprobs === undefined ? null : [];
    this.constraint = constraintOf(req, tokenizer, this.stops);
  }

  /**
   * Samples the next token from this row's logits [V] and returns it with the text it released (held back
   * while it may begin a stop string) and, when asked for, its logprobs; null when it is a stop token (the
   * sequence ends without it).
   */
  accept(logits: Float32Array | Float64Array): { token: number; text: string; logprob?: TokenLogprob } | null {
    const r = this.req;
    // Float64 rows come only from float64 test models; float32 rows are views, sampled without a copy.
    let f32 = logits instanceof Float32Array ? logits : Float32Array.from(logits);
    if (this.seen?.size || this.bias.length) f32 = this.adjusted(f32);
    const sampling = { temperature: r.temperature ?? 0, topK: r.topK, topP: r.topP };
    let token = sampleToken(f32, sampling, this.rng);
    if (this.constraint && !this.constraint.allows(token)) {
      // The model's pick breaks the JSON (or writes banned text): pick again among the tokens that do not (its
      // first pick stands when it fits, so greedy decoding is exact and the mask's cost is paid only on a refusal).
      const masked = f32.slice();
      this.constraint.mask(masked);
      token = sampleToken(masked, sampling, this.rng);
    }
    return this.take(token, f32);
  }

  /**
   * True when this row's next token is the plain argmax of its logits (greedy; no logit_bias, penalties, constraint
   * or logprobs), so that a decode loop may pick it in the graph (model/decode-loop.ts).
   */
  get greedy(): boolean {
    return (this.req.temperature ?? 0) <= GREEDY_TEMPERATURE && !this.seen && this.bias.length === 0 && !this.constraint && !this.logprobs;
  }

  /** Takes a token picked for this greedy row elsewhere (a decode loop's argmax), as accept takes its own pick. */
  acceptPicked(token: number): { token: number; text: string } | null {
    if (!this.greedy) throw new Error("sequence: only a greedy row without logit changes or logprobs takes a token picked elsewhere");
    return this.take(token, null);
  }

  /** The pick's effects: stop tokens, the output, the constraint, logprobs (from `logits`), text and stop strings. */
  private take(token: number, logits: Float32Array | null): { token: number; text: string; logprob?: TokenLogprob } | null {
    const r = this.req;
    if (this.stops.has(token)) {
      this.done = true;
      this.reason = "stop";
      return null;
    }
    this.out.push(token);
    this.seen?.set(token, (this.seen.get(token) ?? 0) + 1);
    const callWasOpen = this.inCall;
    if (this.constraint?.take(token)) {
      this.done = true;
      this.reason = "stop";
    }
    let logprob: TokenLogprob | undefined;
    if (this.logprobs && logits) this.logprobs.push((logprob = tokenLogprobs(logits, token, r.logprobs ?? 0)));
    let text = "";
    if (this.detok) {
      // A hidden token writes nothing: the stream decodes the text without it, as the whole decode does.
      const hidden = r.hiddenTokens?.has(token) ?? false;
      const piece = hidden ? "" : this.detok.push(token);
      const at = hidden ? this.detok.nextOffset : this.detok.lastOffset;
      // A tool call's text is not searched for stop strings, which would cut its JSON short.
      const res = callWasOpen || this.inCall ? { emit: this.matcher.flush() + piece, stopped: false } : hidden ? this.pushHidden(token) : this.matcher.push(piece);
      text = res.emit;
      this.text += text;
      if (res.stopped) {
        this.done = true;
        this.reason = "stop";
      }
      // A token a stop string cut off sits at the text's end (finish caps the earlier ones the cut passed).
      if (logprob) logprob.textOffset = res.stopped ? Math.min(at, this.text.length) : at;
    }
    if (!this.done && this.out.length >= r.maxTokens) this.done = true;
    return logprob ? { token, text, logprob } : { token, text };
  }

  /**
   * A hidden token's text goes to the stop matcher when a stop string holds such text. When it completes one, the
   * text before it is released first (an unfinished character's bytes too, as at a stop token), unless that text
   * holds a stop string itself.
   */
  private pushHidden(token: number): { emit: string; stopped: boolean } {
    if (!this.matcher.seesHidden || !this.tokenizer) return this.matcher.push("");
    const text = spell(this.tokenizer, token);
    const before = this.matcher.wouldStopAt(text) ? this.matcher.push(this.detok?.flush() ?? "") : { emit: "", stopped: false };
    if (before.stopped) return before;
    const res = this.matcher.push(text, true);
    return { emit: before.emit + res.emit, stopped: res.stopped };
  }

  /** The prompt tokens the text is decoded after (none for a chat's answer, which starts a turn). */
  private get context(): number[] {
    return this.req.continuesPrompt ? this.req.tokens.slice(-CONTEXT_TOKENS) : [];
  }

  private get inCall(): boolean {
    return this.constraint instanceof AutoToolCalls && this.constraint.inCall;
  }

  /** A copy of the row's logits (the row may be a view into the batch's) with the bias and penalties applied. */
  private adjusted(logits: Float32Array): Float32Array {
    const out = logits.slice();
    for (const [token, b] of this.bias) out[token] += b;
    const frequency = this.req.frequencyPenalty ?? 0;
    const presence = this.req.presencePenalty ?? 0;
    for (const [token, count] of this.seen ?? []) out[token] -= frequency * count + presence;
    return out;
  }

  /** The result, and the text held back until the end (a possible stop-string prefix, an unfinished character). */
  finish(): { tail: string; result: SequenceResult } {
    let tail = "";
    if (this.detok && !this.matcher.stopped) {
      const held = this.matcher.push(this.detok.flush());
      tail = held.emit + this.matcher.flush();
      this.text += tail;
      // The held text (a token with a whole character before an unfinished one) may hold a stop string.
      if (held.stopped) this.reason = "stop";
    } else if (!this.detok && this.tokenizer) {
      const hidden = this.req.hiddenTokens;
      this.text = decodeAfter(this.tokenizer, this.context, hidden?.size ? this.out.filter((t) => !hidden.has(t)) : this.out);
    }
    // Tokens a stop string cut off sit at the text's end.
    for (const l of this.logprobs ?? []) if (l.textOffset !== undefined && l.textOffset > this.text.length) l.textOffset = this.text.length;
    const result: SequenceResult = { tokens: this.out, text: this.text, finishReason: this.reason, promptTokens: this.req.tokens.length, completionTokens: this.out.length };
    if (this.logprobs) result.logprobs = this.logprobs;
    return { tail, result };
  }
}

/** The hidden tokens' texts, which a stop string may hold (none without stop strings). */
function hiddenTexts(req: SequenceRequest, tok: SequenceTokenizer | null): string[] {
  if (!tok || !req.stop?.length || !req.hiddenTokens?.size) return [];
  return [...req.hiddenTokens].map((t) => spell(tok, t));
}

/** A token's text, as logprobs spell it. */
const spell = (tok: SequenceTokenizer, t: number) => (tok.tokenBytes ? utf8.decode(tok.tokenBytes(t)) : tok.decode([t]));

const utf8 = new TextDecoder();
