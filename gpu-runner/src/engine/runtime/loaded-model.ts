// A model folder opened for inference: config, weights, an optional LoRA adapter (unmerged in slots,
// or merged into the weights) and the decoder session(s) built from them.
import { type ModelConfig } from "../model/config.js";
import { loadModelConfig } from "../model/load-config.js";
import { PROJECTIONS, type Projection } from "../model/names.js";
import { openWeights } from "../model/weights.js";
import { mergeLora } from "../lora/merge.js";
import { loadLoraAdapter, type LoraAdapter } from "../lora/peft.js";
import { LoraSlots, type LoraFeedSource } from "../lora/slots.js";
import { DecoderSession } from "./decoder-session.js";
import { DecodeLoopSession } from "./decode-loop-session.js";

export type LoadModelOptions = {
  /** PEFT adapter folder. */
  adapter?: string;
  /** Fold the adapter into the weights instead of feeding it as session inputs. */
  merge?: boolean;
  /** Unmerged LoRA slots (incl. the zero slot 0); default 2 with an adapter, none without. */
  slots?: number;
  /** Slot rank (≥ every adapter's r); default the adapter's r, or 8. */
  rank?: number;
  /** Modules that get LoRA inputs; default the adapter's targets, or all seven. */
  targets?: Projection[];
  /** "last" for generation (default), "all" for full-sequence logits. */
  logits?: "last" | "all";
  dtype?: "float32" | "float64";
  /** ORT intra-op threads (default 2). */
  threads?: number;
  /** Let ORT threads spin between the ops of a run (see runtime/session.ts); default true unless TUNESERVE_ORT_SPIN=0. */
  spin?: boolean;
  /**
   * Also build the greedy decode loop (runtime/decode-loop-session.ts) for generate(): greedy rows take up to
   * LOOP_STEPS tokens per session.run. A second session, so the pre-packed weights are held twice. float32 only.
   */
  decodeLoop?: boolean;
};

export class LoadedModel {
  private constructor(
    readonly dir: string,
    readonly cfg: ModelConfig,
    readonly session: DecoderSession,
    readonly slots: LoraSlots | null,
    readonly adapter: LoraAdapter | null,
    readonly decodeLoop: DecodeLoopSession | null,
  ) {}

  /** Opens `dir` (config.json + *.safetensors) and builds its decoder session. */
  static async load(dir: string, o: LoadModelOptions = {}): Promise<LoadedModel> {
    const cfg = await loadModelConfig(dir);
    const weights = await openWeights(dir);
    const adapter = o.adapter ? await loadLoraAdapter(o.adapter, cfg) : null;
    if (o.merge && o.dtype === "float64") throw new Error("loadModel: merge works in float32 only; load unmerged for float64");
    if (o.decodeLoop && (o.dtype ?? "float32") !== "float32") throw new Error("loadModel: the decode loop works in float32 only");
    if (adapter && o.merge) await mergeLora(cfg, weights, adapter);
    const slotCount = o.slots ?? (adapter && !o.merge ? 2 : 0);
    let slots: LoraSlots | null = null;
    if (slotCount > 0) {
      const rank = o.rank ?? adapter?.rank ?? 8;
      slots = new LoraSlots(cfg, slotCount, rank, o.targets ?? adapter?.targets ?? [...PROJECTIONS], o.dtype ?? "float32");
      if (adapter && !o.merge) slots.load(1, adapter);
    }
    const session = await DecoderSession.create(cfg, weights, { logits: o.logits, dtype: o.dtype, lora: slots?.spec ?? null, threads: o.threads, spin: o.spin });
    let loop: DecodeLoopSession | null = null;
    try {
      if (o.decodeLoop) loop = await DecodeLoopSession.create(cfg, weights, { lora: slots?.spec ?? null, threads: o.threads, spin: o.spin });
    } catch (e) {
      await session.release(); // nothing else holds it
      throw e;
    }
    // The weights' file bytes are not kept: ORT holds its own copy of every initializer once a session exists,
    // so dropping ours frees a copy of the model (medium: 1617 → 1228 MB steady RSS after load).
    return new LoadedModel(dir, cfg, session, slots, adapter, loop);
  }

  /** The adapter slot rows use by default: 1 when an unmerged adapter is loaded, else 0. */
  get defaultSlot(): number {
    return this.slots && this.adapter ? 1 : 0;
  }

  /** Builds the LoRA inputs of a batch from each row's slot (nothing when the session has no LoRA inputs). */
  loraFeeds(): LoraFeedSource {
    const slots = this.slots;
    return (slotPerRow) => (slots ? slots.feeds(slotPerRow) : {});
  }

  async release(): Promise<void> {
    try {
      await this.session.release();
    } finally {
      await this.decodeLoop?.release();
    }
  }
}
