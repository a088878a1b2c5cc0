// The Llama-family decoder as one ONNX graph with a KV cache: prefill and decode are the same graph
// (an empty cache for a prefill). The cache is the caller's preallocated batch-major buffer
// [B, kvHeads, C, headDim], read in place: attention is split into cached keys (masked by cache_mask)
// and the new tokens' keys (causal), so the cache is never concatenated or copied; the graph outputs
// only the new keys/values.
// Node count matters at decode time (ORT's per-node overhead dominates a single-token step), so
// projections that share an input are fused (q|k|v, gate|up) by ORT constant folding of the weights, and
// each residual add meets the next RMSNorm in one kernel (skipRmsNorm). Attention is in attention.ts.
import { Graph, op, type Tensor } from "../graph/index.js";
import { dimAdd, dimOrOne } from "../graph/dims.js";
import type { ModelConfig } from "./config.js";
import { PROJECTION_GROUPS, loraGroupLayout, loraInputNames, modulePath, pastNames, presentNames, recentNames, type Projection, type ProjectionGroup } from "./names.js";
import { headsRope } from "./rope.js";
import { cachedAttention, lastPosition, type KeyValue } from "./attention.js";
import type { WeightStore } from "./weights.js";

/** Unmerged LoRA as session inputs (see lora/slots.ts for the packing): per layer and group, one A and B per row. */
export type LoraGraphSpec = { rank: number; slots: number; targets: ReadonlySet<Projection> };

export type DecoderGraphOptions = {
  dtype?: "float32" | "float64";
  /** "last": logits [B, V] of the last position only (generation); "all": [B, T, V]. */
  logits?: "last" | "all";
  lora?: LoraGraphSpec | null;
  /**
   * A third segment of attention between the cache and the new tokens: inputs recent_key.i / recent_value.i
   * [B, kvH, R, d] with recent_mask [B, R], and the present outputs hold [recent | new] ([B, kvH, R+T, d]), with
   * present_mask [B, R+T]. A decode loop (decode-loop.ts) carries them from one step to the next in the graph.
   */
  recent?: boolean;
};

/**
 * Builds the decoder graph.
 * Inputs: input_ids [B, T] int64, position_ids [B, T] int64, new_mask [B, T] bool (false = padding),
 * past_key.i / past_value.i [B, kvH, C, d] with cache_mask [B, C] bool (false = padding or unused).
 * With LoRA, per layer and group, each row's adapter: lora.i.g.A [L, in, Σr], lora.i.g.B [L, Σr, Σout]
 * (scale folded into B), with L = B, or L = 1 when every row uses the same adapter. The caller assembles these from the slots once per batch (a view for one
 * row), which costs less than Gather nodes run at every decode step.
 * Outputs: logits, present_key.i / present_value.i [B, kvH, T, d].
 */
export function buildDecoderGraph(cfg: ModelConfig, weights: WeightStore, o: DecoderGraphOptions = {}): Graph {
  const dtype = o.dtype ?? "float32";
  const g = new Graph(`decoder_${cfg.architecture}`);
  const { kvHeads: kvH, heads, headDim: d, hidden: H } = cfg;
  const rep = heads / kvH;
  const w = weights.graphLookup(g, dtype);

  const inputIds = g.input("input_ids", "int64", ["B", "T"]);
  const positionIds = g.input("position_ids", "int64", ["B", "T"]);
  const newMask = g.input("new_mask", "bool", ["B", "T"]);
  const cacheMask = g.input("cache_mask", "bool", ["B", "C"]);
  const past = Array.from({ length: cfg.layers }, (_, i) => ({
    key: g.input(pastNames(i).key, dtype, ["B", kvH, "C", d]),
    value: g.input(pastNames(i).value, dtype, ["B", kvH, "C", d]),
  }));
  const recentMask = o.recent ? g.input("recent_mask", "bool", ["B", "R"]) : null;
  const recent = o.recent
    ? Array.from({ length: cfg.layers }, (_, i) => ({
        key: g.input(recentNames(i).key, dtype, ["B", kvH, "R", d]),
        value: g.input(recentNames(i).value, dtype, ["B", kvH, "R", d]),
      }))
    : null;

  // x: [B, T, in] → [B, T, Σout] for a group of projections sharing their input.
  const groupProj = (x: Tensor, layer: number, group: ProjectionGroup, bias: boolean): Tensor => {
    const paths = group.members.map((m) => modulePath(layer, m));
    // [in, Σout]: ORT folds Concat+Transpose of initializers once at session creation.
    const wT = op.transpose(paths.length === 1 ? w(`${paths[0]}.weight`) : op.concat(paths.map((p) => w(`${p}.weight`)), 0), [1, 0]);
    let y = op.matmul(x, wT);
    if (bias) y = op.add(y, op.concat(paths.map((p) => w(`${p}.bias`)), 0));
    if (o.lora) {
      const layout = loraGroupLayout(cfg, group, o.lora.rank, o.lora.targets);
      if (layout.blocks.length > 0) {
        const names = loraInputNames(layer, group.name);
        // Leading size B (each row its own adapter) or 1 (one adapter for all rows: MatMul broadcasts
        // it, and ORT runs one GEMM over all rows instead of one per row).
        const A = g.input(names.a, dtype, [dimOrOne("B"), layout.inF, layout.rankTotal]);
        const B = g.input(names.b, dtype, [dimOrOne("B"), layout.rankTotal, layout.outTotal]);
        y = op.add(y, op.matmul(op.matmul(x, A), B)); // [B, T, in]·[L, in, Σr]·[L, Σr, Σout]
      }
    }
    return y;
  };
  const [QKV, O, GATE_UP, DOWN] = PROJECTION_GROUPS;

  const rope = headsRope(g, cfg, positionIds, dtype); // flat [B, T, h·d] → [B, T, h, d]

  // Attention mask over [cached slots | new tokens]: cached slots by cache_mask; new token j visible
  // to new token i iff j ≤ i and j is not padding. With GQA the mask meets the scores' 5-D view
  // [B, kvH, rep, T, C+T], hence its extra axis at 2.
  const Td = op.reshape(g.dim("T"), []);
  const steps = op.range(g, 0, Td, "T"); // [T]
  const causal = op.lessOrEqual(op.unsqueeze(steps, [0]), op.unsqueeze(steps, [1])); // [T(i), T(j)]
  const allowNew = op.and(causal, op.unsqueeze(newMask, [1])); // [B, T, T]
  const allowCache = op.expand(op.unsqueeze(cacheMask, [1]), ["B", "T", "C"]); // [B, T, C]
  // The recent segment (a decode loop's own earlier steps) is visible where recent_mask says.
  const allowAfter = recentMask ? op.concat([op.expand(op.unsqueeze(recentMask, [1]), ["B", "T", "R"]), allowNew], -1) : allowNew; // [B, T, (R+)T]
  const allowAll = op.concat([allowCache, allowAfter], -1); // [B, T, C+(R+)T]
  const shared = { cfg, rope, allowed: op.unsqueeze(allowAll, rep > 1 ? [1, 2] : [1]), after: recent ? dimAdd("R", "T") : "T" };
  let x = op.gather(w("model.embed_tokens.weight"), inputIds); // [B, T, H]
  let h = op.rmsNorm(x, w("model.layers.0.input_layernorm.weight"), cfg.rmsEps); // [B, T, H]
  const presents: KeyValue[] = [];
  const lastOnly = (o.logits ?? "last") === "last";
  for (let i = 0; i < cfg.layers; i++) {
    const pre = `model.layers.${i}`;
    const qkv = groupProj(h, i, QKV, cfg.attentionBias); // [B, T, (n + 2·kvH)·d]
    // For last-position logits, the last layer needs every position's keys and values (the cache) but only the
    // last position's attention, o_proj and MLP: from here on the stream is [B, 1, H].
    const lastLayer = lastOnly && i === cfg.layers - 1;
    const att = cachedAttention(shared, qkv, past[i], recent?.[i] ?? null, lastLayer);
    presents.push({ key: att.key, value: att.value });
    // Residual adds fused with the next RMSNorm (one kernel for float32).
    const mid = op.skipRmsNorm(groupProj(att.out, i, O, false), lastLayer ? lastPosition(x) : x, w(`${pre}.post_attention_layernorm.weight`), cfg.rmsEps);
    const [gate, up] = op.split(groupProj(mid.normed, i, GATE_UP, false), -1, [cfg.intermediate, cfg.intermediate]); // [B, T, I] each
    const down = groupProj(op.mul(op.silu(gate), up), i, DOWN, false);
    if (i + 1 < cfg.layers) {
      const next = op.skipRmsNorm(down, mid.sum, w(`model.layers.${i + 1}.input_layernorm.weight`), cfg.rmsEps);
      x = next.sum;
      h = next.normed;
    } else x = op.add(mid.sum, down);
  }

  const head = w(cfg.tieEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  if (lastOnly) {
    const lastRow = op.reshape(x, ["B", H]); // x is [B, 1, H] after the last layer
    g.output(op.gemm(op.rmsNorm(lastRow, w("model.norm.weight"), cfg.rmsEps), head, null, { transB: true }), "logits"); // [B, V]
  } else {
    const flat = op.reshape(op.rmsNorm(x, w("model.norm.weight"), cfg.rmsEps), [-1, H]); // [B·T, H]
    g.output(op.reshape(op.gemm(flat, head, null, { transB: true }), ["B", "T", cfg.vocab]), "logits");
  }
  presents.forEach((p, i) => {
    g.output(p.key, presentNames(i).key);
    g.output(p.value, presentNames(i).value);
  });
  if (recentMask) g.output(op.concat([recentMask, newMask], 1), "present_mask"); // [B, R+T]
  return g;
}
