// The generation loop: one prefill over the left-padded prompts, then one KV-cached decode step per
// token for the whole batch. Each row is a Sequence (sampling, stop tokens, stop strings); finished rows
// keep their slot but feed masked padding, so the batch stays aligned.
import type { DecoderSession } from "../runtime/decoder-session.js";
import type { DecodeLoopSession } from "../runtime/decode-loop-session.js";
import type { KvCache } from "../runtime/kv-cache.js";
import type { ort } from "../runtime/session.js";
import type { LoraFeedSource } from "../lora/slots.js";
import { GROW_SLOTS } from "../runtime/kv-cache.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import { padLeft } from "./batch.js";
import { validateLogprobs } from "./logprobs.js";
import { validateSamplingOptions } from "./sampling.js";
import { Sequence, type FinishReason, type SequenceRequest } from "./sequence.js";

export type { FinishReason } from "./sequence.js";

export type GenerateRequest = SequenceRequest & {
  /** LoRA slot of this row (0 = base model). */
  adapterSlot?: number;
};

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
  /** Called per step with the raw logits [B, V] (tests use it to compare cached against full logits); no decode loop then. */
  onLogits?: (logits: Float32Array | Float64Array, step: number) => void;
  /**
   * The model's greedy decode loop: while every live row is greedy (Sequence.greedy), up to LOOP_STEPS tokens are
   * picked in one session.run instead of one run per token. The tokens are the same, but for two logits that tie
   * within float rounding (the loop sums attention in another order; docs/generation.md).
   */
  decodeLoop?: DecodeLoopSession | null;
};

/**
 * Tokens per decode-loop run: a run's fixed cost is spread over this many steps, and at most this many steps are
 * computed past a stop string (which only JavaScript sees). onToken hears of a run's tokens when it ends.
 */
export const LOOP_STEPS = 32;

/** Generates completions for a batch of prompts; returns per-row results and the prefill/decode timings. */
export async function generate(
  session: DecoderSession,
  reqs: GenerateRequest[],
  o: GenerateOptions = {},
): Promise<{ results: GenerateResult[]; timings: GenerateTimings }> {
  const V = session.cfg.vocab;
  // The loop's graph is float32; a float64 cache would reach it only after the prefill, as an ORT type error.
  if (o.decodeLoop && session.dtype !== "float32") throw new Error("generate: the decode loop works in float32 only; this session is float64");
  const rows = reqs.map((req, i) => {
    validateSamplingOptions({ temperature: req.temperature ?? 0, topK: req.topK, topP: req.topP });
    validateLogprobs(req.logprobs);
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
    // Every row streams its text when there is a tokenizer: onToken reports what each token released.
    return new Sequence(req, o.tokenizer ?? null, { streamText: true });
  });
  const batch = padLeft(reqs.map((r) => r.tokens));
  const B = batch.B;
  const maxNew = Math.max(...reqs.map((r) => r.maxTokens));
  // The prompt plus one growth step; the cache grows as tokens arrive (see KvCache).
  const cache = session.newCache(B, batch.T + Math.min(maxNew, GROW_SLOTS), batch.T + maxNew);
  // Per-row LoRA tensors are assembled once for the whole generation.
  const feeds = o.loraFeeds?.(reqs.map((r) => r.adapterSlot ?? 0)) ?? {};

  const sampleAll = (logits: Float32Array | Float64Array): void => {
    for (let b = 0; b < B; b++) {
      if (rows[b].done) continue;
      const got = rows[b].accept(logits.subarray(b * V, (b + 1) * V));
      if (got) o.onToken?.(b, got.token, got.text);
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
    if (o.decodeLoop && !o.onLogits && rows.every((r) => r.done || r.greedy)) {
      steps += await loopSteps(o.decodeLoop, rows, cache, feeds, o.onToken);
      continue;
    }
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

  const results = rows.map((row): GenerateResult => {
    const { tokens, text, finishReason, promptTokens } = row.finish().result;
    return { tokens, finishReason, promptTokens, ...(o.tokenizer ? { text } : {}) };
  });
  return { results, timings: { prefillMs, decodeMs, decodeSteps: steps, batch: B, promptSlots: batch.T } };
}

/** One decode-loop run over the batch; each live row takes its picks until it ends. Returns the steps run. */
async function loopSteps(loop: DecodeLoopSession, rows: Sequence[], cache: KvCache, feeds: Record<string, ort.Tensor>, onToken: GenerateOptions["onToken"]): Promise<number> {
  const live = rows.map((r) => !r.done);
  const budget = rows.map((r) => (r.done ? 0 : r.req.maxTokens - r.out.length));
  const steps = Math.min(LOOP_STEPS, Math.max(...budget), cache.maxCapacity - cache.length);
  const picks = await loop.run(
    cache,
    {
      ids: BigInt64Array.from(rows, (r) => BigInt(r.done ? 0 : r.out[r.out.length - 1])),
      positions: BigInt64Array.from(rows, (r) => BigInt(r.req.tokens.length + r.out.length - 1)),
      live: Uint8Array.from(live, Number),
      stopIds: rows.map((r) => r.req.stopTokens ?? []),
      budget,
    },
    steps,
    feeds,
  );
  for (const step of picks) {
    rows.forEach((row, b) => {
      if (row.done) return;
      if (step[b] < 0) throw new Error(`generate: row ${b}: its logits hold NaN or +Infinity, or every logit is -Infinity; the model produced invalid values`);
      const got = row.acceptPicked(step[b]);
      if (got) onToken?.(b, got.token, got.text);
    });
  }
  return picks.length;
}
