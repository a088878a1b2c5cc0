// The greedy decode loop (model/decode-loop.ts) in its own ORT session: up to `steps` tokens per row in one run
// on top of a KvCache, whose new slots it appends. Each ORT session keeps its own pre-packed weights, so a
// model with this session beside its DecoderSession holds those twice (see docs/generation.md).
import { buildDecodeLoop } from "../model/decode-loop.js";
import type { LoraGraphSpec } from "../model/decoder.js";
import type { ModelConfig } from "../model/config.js";
import { presentNames, recentNames } from "../model/names.js";
import type { WeightStore } from "../model/weights.js";
import { loopNames } from "../graph/loop.js";
import type { FloatArray } from "../graph/types.js";
import type { KvCache } from "./kv-cache.js";
import { createSession, mergeFeeds, ort } from "./session.js";

/** Each row's state before the loop: the token it feeds next, that token's position, whether it is done. */
export type LoopRows = {
  ids: BigInt64Array;
  positions: BigInt64Array;
  /** 1 = the row takes part; 0 = done (it computes alongside, its picks are ignored and its slots masked). */
  live: Uint8Array;
  /** Token ids that end each row. */
  stopIds: readonly (readonly number[])[];
  /** Steps each row may take at most (its remaining max_tokens). */
  budget: readonly number[];
};

export class DecodeLoopSession {
  private constructor(
    readonly cfg: ModelConfig,
    private readonly session: ort.InferenceSession,
    readonly lora: LoraGraphSpec | null,
  ) {}

  static async create(cfg: ModelConfig, weights: WeightStore, o: { lora?: LoraGraphSpec | null; threads?: number; spin?: boolean } = {}): Promise<DecodeLoopSession> {
    const session = await createSession(buildDecodeLoop(cfg, weights, { lora: o.lora }), { externalData: weights.takeExternalData(), threads: o.threads, spin: o.spin });
    return new DecodeLoopSession(cfg, session, o.lora ?? null);
  }

  /**
   * Runs up to `steps` greedy steps and appends their keys and values to `cache` (slots of rows not live
   * masked). Returns the picks, [taken steps][B]: fewer than `steps` when every row finished first; -1 where a
   * row's logits were invalid (NaN or +Infinity, or all −Infinity: sampling.ts's greedy pick throws on them).
   */
  async run(cache: KvCache, rows: LoopRows, steps: number, loraFeeds: Record<string, ort.Tensor> = {}): Promise<number[][]> {
    const B = cache.batch;
    const { kvHeads: kvH, headDim: d, layers } = this.cfg;
    if (this.lora && Object.keys(loraFeeds).length === 0) throw new Error("decode loop: this session has LoRA inputs; pass the batch's LoRA feeds");
    cache.reserve(steps);
    const S = Math.max(1, ...rows.stopIds.map((s) => s.length));
    const stopIds = new BigInt64Array(B * S).fill(-1n);
    rows.stopIds.forEach((ids, b) => ids.forEach((t, j) => (stopIds[b * S + j] = BigInt(t))));
    const empty = new Float32Array(0);
    const carried: Record<string, ort.Tensor> = {
      [loopNames.initial("input_ids")]: new ort.Tensor("int64", rows.ids, [B, 1]),
      [loopNames.initial("position_ids")]: new ort.Tensor("int64", rows.positions, [B, 1]),
      [loopNames.initial("done")]: new ort.Tensor("bool", rows.live.map((l) => (l ? 0 : 1)), [B]),
      [loopNames.initial("recent_mask")]: new ort.Tensor("bool", new Uint8Array(0), [B, 0]),
    };
    for (let i = 0; i < layers; i++) {
      carried[loopNames.initial(recentNames(i).key)] = new ort.Tensor("float32", empty, [B, kvH, 0, d]);
      carried[loopNames.initial(recentNames(i).value)] = new ort.Tensor("float32", empty, [B, kvH, 0, d]);
    }
    const feeds = mergeFeeds(cache.feeds(new Uint8Array(B).fill(1), 1), loraFeeds, carried, {
      [loopNames.tripCount]: new ort.Tensor("int64", BigInt64Array.from([BigInt(steps)]), []),
      [loopNames.condition]: new ort.Tensor("bool", Uint8Array.from([1]), []),
      stop_ids: new ort.Tensor("int64", stopIds, [B, S]),
      budget: new ort.Tensor("int64", BigInt64Array.from(rows.budget, BigInt), [B]),
    });
    const out = await this.session.run(feeds);
    const picked = out[loopNames.scan("picked")];
    const taken = Number(picked.dims[0]);
    const keys: FloatArray[] = [];
    const values: FloatArray[] = [];
    for (let i = 0; i < layers; i++) {
      keys.push(out[loopNames.final(presentNames(i).key)].data as FloatArray);
      values.push(out[loopNames.final(presentNames(i).value)].data as FloatArray);
    }
    const mask = new Uint8Array(B * taken);
    for (let b = 0; b < B; b++) mask.fill(rows.live[b], b * taken, (b + 1) * taken);
    cache.append(keys, values, mask, taken);
    const ids = picked.data as BigInt64Array;
    return Array.from({ length: taken }, (_, j) => Array.from({ length: B }, (_, b) => Number(ids[j * B + b])));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
