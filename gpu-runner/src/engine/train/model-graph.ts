// The decoder forward pass as the training graph needs it: full sequences, no KV cache, causal mask,
// and LoRA tensors as graph inputs in PEFT's own layout (A [r, in], B [out, r], one adapter for the
// whole batch). Frozen [out, in] weights enter through Gemm(transB=1), so the backward pass multiplies
// by W directly and ORT never folds a transposed copy of a frozen weight (TOOLCHAIN.md).
import type { Graph, Tensor } from "../graph/graph.js";
import { Graph as GraphClass, op } from "../graph/index.js";
import { dimMul } from "../graph/dims.js";
import type { ModelConfig } from "../model/config.js";
import { modulePath, projectionDims, type Projection } from "../model/names.js";
import { ropeOp } from "../model/rope.js";
import type { WeightStore } from "../model/weights.js";

/** Large finite negative added to masked scores (−inf would give NaN: −inf − (−inf) in the softmax of a masked row's max). */
const MASKED = -1e9;

/**
 * Inverted dropout as PEFT applies it to the LoRA branch's input (one fresh mask per module and run):
 * x ⊙ [u ≥ p] / (1 − p) with u ~ U(0, 1) from RandomUniformLike. The mask is bool-derived, so no
 * gradient flows into the random draw and it needs no rule.
 */
function dropout(x: Tensor, p: number): Tensor {
  const u = x.graph.node("RandomUniformLike", [x], [{ dtype: x.dtype, shape: x.shape }])[0];
  const keep = op.cast(op.greater(u, p), x.dtype); // u = p exactly has probability 0
  return op.mul(x, op.mul(keep, 1 / (1 - p)));
}

/**
 * RMSNorm over the last axis, w ⊙ x / √(mean(x²) + eps), with x² as a Mul: ORT's Pow is slow, and the
 * fused SimplifiedLayerNormalization it would otherwise become has no backward rule. x: [N, H], w: [H].
 */
function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const inv = op.reciprocal(op.sqrt(op.add(op.reduceMean(op.mul(x, x), [-1]), eps))); // [N, 1]
  return op.mul(op.mul(x, inv), w);
}

export type TrainForward = {
  graph: Graph;
  /** logits [B, T, V] */
  logits: Tensor;
  /** Trainable LoRA inputs, keyed by PEFT name. */
  lora: Map<string, Tensor>;
};

/** PEFT key of a LoRA tensor: base_model.model.model.layers.{i}.{sub}.{m}.lora_{A|B}.weight */
export const peftKey = (layer: number, m: Projection, kind: "A" | "B"): string => `base_model.model.${modulePath(layer, m)}.lora_${kind}.weight`;

/**
 * Builds the forward graph. Inputs: input_ids [B, T] int64, position_ids [B, T] int64, lora_scale []
 * (alpha/r; 0 gives the base model), and per layer and target the LoRA tensors named by `peftKey`.
 */
export function buildTrainForward(
  cfg: ModelConfig,
  weights: WeightStore,
  o: { rank: number; targets: readonly Projection[]; dtype?: "float32" | "float64"; /** PEFT's lora_dropout on the LoRA branch's input */ dropout?: number },
): TrainForward {
  const p = o.dropout ?? 0;
  if (!(p >= 0 && p < 1)) throw new Error(`lora_dropout=${p} must be in [0, 1)`);
  const dtype = o.dtype ?? "float32";
  const g = new GraphClass(`train_${cfg.architecture}`);
  const { heads, kvHeads: kvH, headDim: d } = cfg;
  const rep = heads / kvH;
  const N = dimMul("B", "T");
  const repT = dimMul(rep, "T");
  const w = weights.graphLookup(g, dtype);
  const inputIds = g.input("input_ids", "int64", ["B", "T"]);
  const positionIds = g.input("position_ids", "int64", ["B", "T"]);
  const scale = g.input("lora_scale", dtype, []);
  const lora = new Map<string, Tensor>();
  const targets = new Set(o.targets);

  // Projections sharing their input x [N, in] → one [N, out] each: x·Wᵀ + bias + scale·(x·Aᵀ)·Bᵀ.
  // Without dropout the members' A matrices are stacked, so x·Aᵀ is one GEMM [N, in]·[in, k·r] (and so
  // are its two gradients): rank-r GEMMs are too thin to run fast one at a time.
  const projGroup = (x: Tensor, layer: number, modules: Projection[], bias: boolean): Tensor[] => {
    const lo = modules.filter((m) => targets.has(m));
    const ab = new Map(
      lo.map((m) => {
        const [out, inF] = projectionDims(cfg, m);
        const a = g.input(peftKey(layer, m, "A"), dtype, [o.rank, inF]);
        const b = g.input(peftKey(layer, m, "B"), dtype, [out, o.rank]);
        lora.set(a.name, a).set(b.name, b);
        return [m, { a, b }] as const;
      }),
    );
    const xa = new Map<Projection, Tensor>(); // [N, r] per module, scaled
    if (lo.length > 1 && p === 0) {
      const stacked = op.mul(op.gemm(x, op.concat(lo.map((m) => ab.get(m)!.a), 0), null, { transB: true }), scale); // [N, k·r]
      op.split(stacked, 1, lo.map(() => o.rank)).forEach((t, i) => xa.set(lo[i], t));
    } else {
      for (const m of lo) xa.set(m, op.mul(op.gemm(p > 0 ? dropout(x, p) : x, ab.get(m)!.a, null, { transB: true }), scale));
    }
    return modules.map((m) => {
      const path = modulePath(layer, m);
      const y = op.gemm(x, w(`${path}.weight`), bias ? w(`${path}.bias`) : null, { transB: true });
      const t = xa.get(m);
      return t ? op.add(y, op.gemm(t, ab.get(m)!.b, null, { transB: true })) : y;
    });
  };

  const rope = ropeOp(g, cfg, positionIds, dtype); // on [B, T, h, d]

  // Causal mask [T, T]: query i sees keys j ≤ i. Right padding needs nothing more: padded keys come
  // after every real query, and padded positions are out of the loss mask.
  const T = op.reshape(g.dim("T"), []);
  const slots = op.range(g, 0, T, "T"); // [T]
  const allowed = op.lessOrEqual(op.unsqueeze(slots, [0]), op.unsqueeze(slots, [1])); // [T(query), T(key)]
  // Added to the scores rather than selected by Where: a broadcast Add is several times cheaper than
  // Where on ORT's CPU kernels, and its gradient is the identity (no backward op at all).
  const maskBias = op.where(allowed, g.scalar(0, dtype), MASKED); // [T, T]: 0 or MASKED

  let x = op.reshape(op.gather(w("model.embed_tokens.weight"), inputIds), [N, cfg.hidden]); // [N, H]
  for (let i = 0; i < cfg.layers; i++) {
    const pre = `model.layers.${i}`;
    const h = rmsNorm(x, w(`${pre}.input_layernorm.weight`), cfg.rmsEps); // [N, H]
    const [qp, kp, vp] = projGroup(h, i, ["q_proj", "k_proj", "v_proj"], cfg.attentionBias);
    const q = rope(op.reshape(qp, ["B", "T", heads, d])); // [B, T, n, d]
    const k = rope(op.reshape(kp, ["B", "T", kvH, d])); // [B, T, kvH, d]
    const v = op.reshape(vp, ["B", "T", kvH, d]);
    // GQA as Hugging Face's repeat_kv: query head j uses kv head ⌊j/rep⌋, so the rep query heads of a kv
    // head sit next to each other and fold into the row axis: [B, kvH, rep·T, d].
    const qs = op.reshape(op.mul(op.transpose(q, [0, 2, 1, 3]), 1 / Math.sqrt(d)), ["B", kvH, repT, d]);
    const keys = op.transpose(k, [0, 2, 3, 1]); // [B, kvH, d, T]
    const values = op.transpose(v, [0, 2, 1, 3]); // [B, kvH, T, d]
    const scores = op.reshape(op.matmul(qs, keys), ["B", kvH, rep, "T", "T"]); // [B, kvH, rep, T, T]
    const probs = op.reshape(op.softmax(op.add(scores, maskBias), -1), ["B", kvH, repT, "T"]);
    const ctx = op.reshape(op.matmul(probs, values), ["B", heads, "T", d]); // [B, n, T, d]
    const merged = op.reshape(op.transpose(ctx, [0, 2, 1, 3]), [N, heads * d]); // [N, n·d]
    x = op.add(x, projGroup(merged, i, ["o_proj"], false)[0]);
    const h2 = rmsNorm(x, w(`${pre}.post_attention_layernorm.weight`), cfg.rmsEps);
    const [gate, up] = projGroup(h2, i, ["gate_proj", "up_proj"], false);
    x = op.add(x, projGroup(op.mul(op.silu(gate), up), i, ["down_proj"], false)[0]); // act: [N, I]
  }
  const head = w(cfg.tieEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  const logits = op.gemm(rmsNorm(x, w("model.norm.weight"), cfg.rmsEps), head, null, { transB: true }); // [N, V]
  return { graph: g, logits: op.reshape(logits, ["B", "T", cfg.vocab]), lora };
}
