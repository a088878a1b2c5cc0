// One decoder graph in one ORT session, and a step function over a KvCache: feeds token ids,
// positions, the cache prefix and LoRA inputs; appends the new keys/values; returns the logits.
import { buildDecoderGraph, type DecoderGraphOptions, type LoraGraphSpec } from "../model/decoder.js";
import type { ModelConfig } from "../model/config.js";
import { presentNames } from "../model/names.js";
import type { WeightStore } from "../model/weights.js";
import { toOnnx } from "../graph/index.js";
import { KvCache } from "./kv-cache.js";
import type { FloatArray } from "../graph/types.js";
import { createSession, mergeFeeds, ort } from "./session.js";

export type StepInput = {
  /** [B, T] row-major token ids. */
  ids: BigInt64Array;
  /** [B, T] RoPE positions. */
  positions: BigInt64Array;
  /** [B, T] 1 for real tokens, 0 for padding. */
  mask: Uint8Array;
  T: number;
};

export class DecoderSession {
  private constructor(
    readonly cfg: ModelConfig,
    readonly session: ort.InferenceSession,
    readonly dtype: "float32" | "float64",
    readonly logitsMode: "last" | "all",
    readonly lora: LoraGraphSpec | null,
  ) {}

  /** Builds the graph from `weights` and opens a session on it. */
  static async create(cfg: ModelConfig, weights: WeightStore, o: DecoderGraphOptions & { threads?: number; spin?: boolean } = {}): Promise<DecoderSession> {
    const dtype = o.dtype ?? "float32";
    const graph = buildDecoderGraph(cfg, weights, o);
    const session = await createSession(toOnnx(graph), { externalData: weights.takeExternalData(), threads: o.threads, spin: o.spin, float64: dtype === "float64" });
    return new DecoderSession(cfg, session, dtype, o.logits ?? "last", o.lora ?? null);
  }

  /** A KV cache for `batch` rows starting at `capacity` slots and growing up to `maxCapacity`. */
  newCache(batch: number, capacity: number, maxCapacity = capacity): KvCache {
    return new KvCache(this.cfg, batch, capacity, this.dtype, maxCapacity);
  }

  /**
   * Runs T new tokens per row through the model on top of `cache`, appends their keys/values and
   * mask, and returns logits ([B, V] or [B, T, V]).
   * `loraFeeds` holds the batch's per-row LoRA inputs (LoraSlots.feeds) for LoRA sessions.
   */
  async step(cache: KvCache, input: StepInput, loraFeeds: Record<string, ort.Tensor> = {}): Promise<FloatArray> {
    const B = cache.batch;
    const feeds = mergeFeeds(cache.feeds(input.mask, input.T), loraFeeds, {
      input_ids: new ort.Tensor("int64", input.ids, [B, input.T]),
      position_ids: new ort.Tensor("int64", input.positions, [B, input.T]),
    });
    if (this.lora && Object.keys(loraFeeds).length === 0) throw new Error("decoder step: this session has LoRA inputs; pass the batch's LoRA feeds");
    const out = await this.session.run(feeds);
    const keys: FloatArray[] = [];
    const values: FloatArray[] = [];
    for (let i = 0; i < this.cfg.layers; i++) {
      keys.push(out[presentNames(i).key].data as FloatArray);
      values.push(out[presentNames(i).value].data as FloatArray);
    }
    cache.append(keys, values, input.mask, input.T);
    return out.logits.data as FloatArray;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
