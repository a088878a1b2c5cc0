// LoRA training on onnxruntime: the training graph's session plus the optimizer state held in JS
// (parameters, AdamW moments, step count). One step over K micro-batches = K runs of the train session;
// loss evaluation and raw gradients get their own (lazily built) sessions.
import type { ModelConfig } from "../model/config.js";
import { frozenMatmulParams, type Projection } from "../model/names.js";
import type { WeightStore } from "../model/weights.js";
import { toOnnx } from "../graph/index.js";
import { createSession, mergeFeeds, ort } from "../runtime/session.js";
import type { AdamWConfig } from "./adamw.js";
import { batchFeeds, lossUnits, type TrainBatch } from "./feeds.js";
import type { FloatArray } from "../graph/types.js";
import { buildTrainGraph, FLAT, flatSize, gradName, paramSize, trainParams, type Objective, type TrainGraphMode, type TrainParam } from "./train-graph.js";

export type TrainerOptions = {
  rank: number;
  /** LoRA scale: alpha / r, or alpha / √r with rsLoRA. */
  scale: number;
  targets: readonly Projection[];
  dtype?: "float32" | "float64";
  adamw?: AdamWConfig;
  maxGradNorm?: number | null;
  /** PEFT lora_dropout (training steps only). */
  dropout?: number;
  /** Cross-entropy (default) or DPO; DPO batches come in pairs with reference log-likelihoods (TrainBatch.ref). */
  objective?: Objective;
  threads?: number;
  /**
   * ORT weight pre-packing: a packed second copy of every frozen weight, for faster MatMuls. "auto" (the
   * default) packs when the frozen matmul weights take at most 256 MiB. Measured on 2 cores: small
   * (118 MB of frozen matmul weights) 1470 → 1605 tok/s at 1845 → 1960 MB peak RSS; medium (438 MB) raised peak RSS
   * from 4624 to 5190 MB, above the PyTorch peer's 4803, with no clear speed gain.
   */
  prepack?: boolean | "auto";
  /**
   * Let ORT's idle intra-op threads spin between the ops of a step (default true; TUNESERVE_ORT_SPIN=0
   * turns it off). A step is one long run of ~2,000 ops that keeps both cores busy anyway, so spinning
   * only saves the wake-up of the second thread at every op: measured on small, ~7 % faster steps.
   */
  spin?: boolean;
};

type Session = ort.InferenceSession;

export class LoraTrainer {
  private readonly sessions = new Map<TrainGraphMode, Session>();
  readonly dtype: "float32" | "float64";
  readonly params: TrainParam[];
  /** Parameters, AdamW moments: flat vectors in `params` order, as the train graph takes them (FLAT). */
  private flat: { values: FloatArray; m: FloatArray; v: FloatArray } | null = null;
  /** Number of optimizer steps taken. */
  stepCount = 0;

  constructor(
    readonly cfg: ModelConfig,
    private readonly weights: WeightStore,
    readonly o: TrainerOptions,
  ) {
    this.dtype = o.dtype ?? "float32";
    this.params = trainParams(cfg, o.rank, o.targets);
  }

  /** Sets the LoRA values and resets the optimizer (zero moments, step 0). */
  setParams(values: ReadonlyMap<string, FloatArray>): void {
    this.flat = { values: this.pack(values, "values"), m: this.zeros(), v: this.zeros() };
    this.stepCount = 0;
  }

  /**
   * Current LoRA values (PEFT layout, keyed by PEFT name): views into the flat vector, so writing into a
   * view changes the parameter. A step swaps in new vectors: views taken before it keep the old values.
   */
  get values(): ReadonlyMap<string, FloatArray> {
    return this.views(this.state().values);
  }
  /** AdamW first moments, as views (set: copied in, e.g. from a checkpoint). */
  get m(): ReadonlyMap<string, FloatArray> {
    return this.views(this.state().m);
  }
  set m(x: ReadonlyMap<string, FloatArray>) {
    this.state().m = this.pack(x, "m");
  }
  /** AdamW second moments, as views (set: copied in). */
  get v(): ReadonlyMap<string, FloatArray> {
    return this.views(this.state().v);
  }
  set v(x: ReadonlyMap<string, FloatArray>) {
    this.state().v = this.pack(x, "v");
  }

  private state() {
    if (!this.flat) throw new Error("LoRA trainer: no parameter values; call setParams first");
    return this.flat;
  }

  /** A flat vector [P] of zeros. */
  private zeros(): FloatArray {
    const P = flatSize(this.params);
    return this.dtype === "float64" ? new Float64Array(P) : new Float32Array(P);
  }

  /** One tensor per parameter, copied into a flat vector in `params` order. */
  private pack(x: ReadonlyMap<string, FloatArray>, what: string): FloatArray {
    const out = this.zeros();
    let at = 0;
    for (const p of this.params) {
      const t = x.get(p.name);
      if (!t) throw new Error(`LoRA trainer: ${what} has no value for ${p.name}`);
      if (t.length !== paramSize(p)) throw new Error(`LoRA trainer: ${what} for ${p.name} has ${t.length} values, expected [${p.shape}]`);
      out.set(t, at);
      at += t.length;
    }
    return out;
  }

  /** Per-parameter views (no copy) of a flat vector. */
  private views(flat: FloatArray): Map<string, FloatArray> {
    const out = new Map<string, FloatArray>();
    let at = 0;
    for (const p of this.params) {
      out.set(p.name, flat.subarray(at, at + paramSize(p)));
      at += paramSize(p);
    }
    return out;
  }

  private async session(mode: TrainGraphMode): Promise<Session> {
    let s = this.sessions.get(mode);
    if (!s) {
      const tg = buildTrainGraph(this.cfg, this.weights, { mode, rank: this.o.rank, targets: this.o.targets, dtype: this.dtype, adamw: this.o.adamw, maxGradNorm: this.o.maxGradNorm, dropout: this.o.dropout, objective: this.o.objective });
      s = await createSession(toOnnx(tg.graph), { externalData: this.weights.takeExternalData(), float64: this.dtype === "float64", threads: this.o.threads, prepack: this.prepackWeights(), memPattern: false, spin: this.o.spin });
      this.sessions.set(mode, s);
    }
    return s;
  }

  private tensor(data: FloatArray, shape: readonly number[]): ort.Tensor {
    return new ort.Tensor(this.dtype, data as never, [...shape]);
  }

  private paramFeeds(): Record<string, ort.Tensor> {
    const f: Record<string, ort.Tensor> = {};
    const values = this.values;
    for (const p of this.params) f[p.name] = this.tensor(values.get(p.name)!, p.shape);
    return f;
  }

  /** Loss and raw gradients of one batch, without changing anything. */
  async grads(batch: TrainBatch): Promise<{ loss: number; grads: Map<string, FloatArray> }> {
    const s = await this.session("grads");
    const r = await s.run(mergeFeeds(batchFeeds(batch, this.o.scale, lossUnits(batch), this.dtype), this.paramFeeds()));
    return { loss: Number(r.loss.data[0]), grads: new Map(this.params.map((p) => [p.name, r[gradName(p.name)].data as FloatArray])) };
  }

  /** The loss of a batch with the current parameters (forward only, no dropout). */
  async loss(batch: TrainBatch): Promise<number> {
    return (await this.evaluate(batch)).loss;
  }

  /** Forward only: the batch's mean loss and, with DPO, each row's log-likelihood and each pair's margin. */
  async evaluate(batch: TrainBatch): Promise<{ loss: number; seqLogp?: FloatArray; margins?: FloatArray }> {
    const s = await this.session("eval");
    const r = await s.run(mergeFeeds(batchFeeds(batch, this.o.scale, lossUnits(batch), this.dtype), this.paramFeeds()));
    return { loss: Number(r.loss.data[0]), ...(r.seq_logp ? { seqLogp: r.seq_logp.data as FloatArray, margins: r.margins.data as FloatArray } : {}) };
  }

  /** One optimizer step over `micro` micro-batches (their gradients summed); returns the loss before the update and the gradient norm before clipping. */
  async step(micro: TrainBatch[], lr: number): Promise<{ loss: number; gradNorm: number }> {
    if (micro.length === 0) throw new Error("LoRA trainer: a step needs at least one micro-batch");
    const denom = micro.reduce((s, b) => s + lossUnits(b), 0);
    if (denom === 0) throw new Error("LoRA trainer: no position of the step's micro-batches is in the loss mask");
    const s = await this.session("train");
    const F = this.dtype === "float64" ? Float64Array : Float32Array;
    const scalar = (x: number) => new ort.Tensor(this.dtype, F.from([x]) as never, []);
    const st = this.state();
    const vec = (x: FloatArray) => this.tensor(x, [x.length]);
    let acc: FloatArray = st.values.slice().fill(0);
    let loss = 0;
    let r: ort.InferenceSession.OnnxValueMapType = {};
    for (const b of micro) {
      r = await s.run(
        mergeFeeds(batchFeeds(b, this.o.scale, denom, this.dtype), this.paramFeeds(), {
          [FLAT.acc]: vec(acc),
          [FLAT.m]: vec(st.m),
          [FLAT.v]: vec(st.v),
          lr: scalar(lr),
          step: scalar(this.stepCount + 1),
        }),
      );
      loss += Number(r.loss.data[0]);
      acc = r[FLAT.accOut].data as FloatArray;
    }
    // The last run's update used the gradient summed over every micro-batch.
    this.flat = { values: r[FLAT.newParams].data as FloatArray, m: r[FLAT.mOut].data as FloatArray, v: r[FLAT.vOut].data as FloatArray };
    this.stepCount++;
    return { loss, gradNorm: Number(r.grad_norm.data[0]) };
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
  }

  /** Whether sessions pre-pack the frozen weights (see TrainerOptions.prepack). */
  private prepackWeights(): boolean {
    const p = this.o.prepack ?? "auto";
    if (p !== "auto") return p;
    const bytes = frozenMatmulParams(this.cfg) * (this.dtype === "float64" ? 8 : 4);
    return bytes <= 256 * 1024 * 1024;
  }
}
