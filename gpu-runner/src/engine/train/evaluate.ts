// Validation: mean masked next-token loss and mean token accuracy (argmax = target) of LoRA
// parameters over held-out rows, from one forward-only graph (no gradients, no dropout).
import { op, toOnnx } from "../graph/index.js";
import type { ModelConfig } from "../model/config.js";
import type { Projection } from "../model/names.js";
import type { WeightStore } from "../model/weights.js";
import { createSession, mergeFeeds, ort } from "../runtime/session.js";
import { rowsToBatch, type Row } from "../data/batches.js";
import { batchFeeds, maskedCount } from "./feeds.js";
import type { FloatArray } from "../graph/types.js";
import { maskedCrossEntropy } from "./loss.js";
import { buildTrainForward } from "./model-graph.js";
import { trainParams } from "./train-graph.js";

export type Evaluation = { loss: number; tokenAccuracy: number; tokens: number };

/** Holds the evaluation session of one LoRA configuration; `evaluate` runs it over rows in batches. */
export class LoraEvaluator {
  private session: ort.InferenceSession | null = null;

  constructor(
    private readonly cfg: ModelConfig,
    private readonly weights: WeightStore,
    private readonly o: { rank: number; scale: number; targets: readonly Projection[]; threads?: number },
  ) {}

  private async open(): Promise<ort.InferenceSession> {
    if (this.session) return this.session;
    const { graph: g, logits, lora } = buildTrainForward(this.cfg, this.weights, { rank: this.o.rank, targets: this.o.targets, dtype: "float32" });
    const targets = g.input("targets", "int64", ["B", "T"]);
    const mask = g.input("loss_mask", "float32", ["B", "T"]);
    // Denominator 1: the graph returns the loss sum, averaged over all batches below.
    g.output(maskedCrossEntropy(logits, targets, mask, g.input("loss_denominator", "float32", [])), "loss_sum");
    const hit = op.cast(op.equal(op.argMax(logits, -1), targets), "float32"); // [B, T]
    g.output(op.reduceSum(op.mul(hit, mask), [0, 1], false), "correct");
    if (lora.size !== trainParams(this.cfg, this.o.rank, this.o.targets).length) throw new Error("evaluator: the forward graph's LoRA inputs do not match the train params");
    this.session = await createSession(toOnnx(g), { externalData: this.weights.takeExternalData(), threads: this.o.threads });
    return this.session;
  }

  /** Loss and token accuracy over every masked position of `rows`, `batchSize` rows per run. */
  async evaluate(rows: Row[], values: ReadonlyMap<string, FloatArray>, batchSize: number): Promise<Evaluation> {
    const s = await this.open();
    const params = trainParams(this.cfg, this.o.rank, this.o.targets);
    const lora: Record<string, ort.Tensor> = {};
    for (const p of params) lora[p.name] = new ort.Tensor("float32", values.get(p.name) as Float32Array, [...p.shape]);
    let lossSum = 0;
    let correct = 0;
    let tokens = 0;
    for (let i = 0; i < rows.length; i += batchSize) {
      const b = rowsToBatch(rows.slice(i, i + batchSize));
      const r = await s.run(mergeFeeds(batchFeeds(b, this.o.scale, 1, "float32"), lora));
      lossSum += Number(r.loss_sum.data[0]);
      correct += Number(r.correct.data[0]);
      tokens += maskedCount(b);
    }
    return { loss: tokens ? lossSum / tokens : NaN, tokenAccuracy: tokens ? correct / tokens : NaN, tokens };
  }

  async release(): Promise<void> {
    await this.session?.release();
    this.session = null;
  }
}
