// The generation loop: one prefill over the left-padded prompts, then one KV-cached decode step per
// token for the whole batch. Sampling, stop tokens and stop strings are per row; finished rows keep
// their slot but feed masked padding, so the batch stays aligned.
import type { DecoderSession } from "../runtime/decoder-session.js";
import type { LoraFeedSource } from "../lora/slots.js";
import { GROW_SLOTS } from "../runtime/kv-cache.js";
import { createDecodeStream, type TextTokenizer } from "../tokenizer/tokenizer.js";
import { padLeft } from "./batch.js";
import { createRng, sampleToken, validateSamplingOptions } from "./sampling.js";
import { StopMatcher } from "./stop.js";

export type GenerateRequest = {
  tokens: number[];
  maxTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Token ids that end the sequence (not included in the output); default none. */
  stopTokens?: number[];
  /** Stop strings (need a tokenizer); the text is cut before the stop string. */
  stop?: string[];
  /** LoRA slot of this row (0 = base model). */
  adapterSlot?: number;
};

export type FinishReason = "stop" | "length";

export type GenerateResult = {
  tokens: number[];
  /** Decoded completion (only with a tokenizer). */
  text?: string;
  finishReason: FinishReason;
  promptTokens: number;
};

export type GenerateTimings = { prefillMs: number; decodeMs: number; decodeSteps: number; batch: number; promptSlots: number };

export type GenerateOptions = {
  /** LoRA inputs from each row's slot (LoadedModel.loraFeeds()); required for LoRA sessions. */
  loraFeeds?: LoraFeedSource;
  tokenizer?: Pick<TextTokenizer, "decode"> | null;
  /** Called for every accepted token, with the text it released (after stop-string hold-back). */
  onToken?: (row: number, token: number, text: string) => void;
  /** Called per step with the raw logits [B, V] (tests use it to compare cached against full logits). */
  onLogits?: (logits: Float32Array | Float64Array, step: number) => void;
};

type Row = {
  req: GenerateRequest;
  out: number[];
  done: boolean;
  finish: FinishReason;
  rng: ReturnType<typeof createRng>;
  stops: Set<number>;
  matcher: StopMatcher | null;
  detok: ReturnType<typeof createDecodeStream> | null;
  text: string;
};

/** Generates completions for a batch of prompts; returns per-row results and the prefill/decode timings. */
export async function generate(
  session: DecoderSession,
  reqs: GenerateRequest[],
  o: GenerateOptions = {},
): Promise<{ results: GenerateResult[]; timings: GenerateTimings }> {
  const V = session.cfg.vocab;
  const rows: Row[] = reqs.map((req, i) => {
    validateSamplingOptions({ temperature: req.temperature ?? 0, topK: req.topK, topP: req.topP });
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new Error(`generate: request ${i}: max_tokens=${req.maxTokens} must be an integer ≥ 1`);
    for (const t of req.tokens) if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`generate: request ${i}: token ${t} is outside the vocabulary 0..${V - 1}`);
    if (req.stop?.length && !o.tokenizer) throw new Error(`generate: request ${i}: stop strings need a tokenizer (tokenizer.json in the model folder)`);
    const window = session.cfg.slidingWindow;
    if (window !== null && req.tokens.length + req.maxTokens > window) {
      throw new Error(`generate: request ${i}: prompt + max_tokens = ${req.tokens.length + req.maxTokens} exceeds the model's sliding_window ${window}, which this engine does not implement`);
    }
    const slot = req.adapterSlot ?? 0;
    if (slot !== 0 && !session.lora) throw new Error(`generate: request ${i}: adapter slot ${slot} but the session has no LoRA inputs`);
    if (session.lora && (slot < 0 || slot >= session.lora.slots)) throw new Error(`generate: request ${i}: adapter slot ${slot} is out of range 0..${session.lora.slots - 1}`);
    return {
      req,
      out: [],
      done: false,
      finish: "length",
      rng: createRng(req.seed ?? 0),
      stops: new Set(req.stopTokens ?? []),
      matcher: o.tokenizer ? new StopMatcher(req.stop ?? []) : null,
      detok: o.tokenizer ? createDecodeStream(o.tokenizer) : null,
      text: "",
    };
  });
  const batch = padLeft(reqs.map((r) => r.tokens));
  const B = batch.B;
  const maxNew = Math.max(...reqs.map((r) => r.maxTokens));
  // The prompt plus one growth step; the cache grows as tokens arrive (see KvCache).
  const cache = session.newCache(B, batch.T + Math.min(maxNew, GROW_SLOTS), batch.T + maxNew);
  // Per-row LoRA tensors are assembled once for the whole generation.
  const feeds = o.loraFeeds?.(reqs.map((r) => r.adapterSlot ?? 0)) ?? {};

  const accept = (b: number, logitsRow: Float32Array): void => {
    const row = rows[b];
    const r = row.req;
    const token = sampleToken(logitsRow, { temperature: r.temperature ?? 0, topK: r.topK, topP: r.topP }, row.rng);
    if (row.stops.has(token)) {
      row.done = true;
      row.finish = "stop";
      return;
    }
    row.out.push(token);
    let delta = "";
    if (row.detok && row.matcher) {
      const res = row.matcher.push(row.detok.push(token));
      delta = res.emit;
      row.text += delta;
      if (res.stopped) {
        row.done = true;
        row.finish = "stop";
      }
    }
    o.onToken?.(b, token, delta);
    if (!row.done && row.out.length >= r.maxTokens) row.done = true;
  };
  const sampleAll = (logits: Float32Array | Float64Array): void => {
    for (let b = 0; b < B; b++) {
      if (rows[b].done) continue;
      const row = logits.subarray(b * V, (b + 1) * V);
      accept(b, row instanceof Float32Array ? row : Float32Array.from(row));
    }
  };

  let t0 = performance.now();
  const prefill = await session.step(cache, { ids: batch.ids, positions: batch.positions, mask: batch.mask, T: batch.T }, feeds);
  o.onLogits?.(prefill, 0);
  sampleAll(prefill);
  const prefillMs = performance.now() - t0;

  t0 = performance.now();
  let steps = 0;
  const ids = new BigInt64Array(B);
  const positions = new BigInt64Array(B);
  const mask = new Uint8Array(B);
  while (rows.some((r) => !r.done)) {
    for (let b = 0; b < B; b++) {
      const row = rows[b];
      const live = !row.done;
      ids[b] = live ? BigInt(row.out[row.out.length - 1]) : 0n;
      positions[b] = BigInt(row.req.tokens.length + row.out.length - 1);
      mask[b] = live ? 1 : 0;
    }
    const logits = await session.step(cache, { ids, positions, mask, T: 1 }, feeds);
    steps++;
    o.onLogits?.(logits, steps);
    sampleAll(logits);
  }
  const decodeMs = performance.now() - t0;

  const results = rows.map((row) => {
    if (row.detok && row.matcher && !row.matcher.stopped) row.text += row.matcher.push(row.detok.flush()).emit + row.matcher.flush();
    return { tokens: row.out, finishReason: row.finish, promptTokens: row.req.tokens.length, ...(o.tokenizer ? { text: row.text } : {}) };
  });
  return { results, timings: { prefillMs, decodeMs, decodeSteps: steps, batch: B, promptSlots: batch.T } };
}
