// Greedy decoding of many tokens in one session.run: the decoder graph (with its `recent` segment) as the body of
// an ONNX Loop that picks each row's next token by ArgMax and feeds it back. The cache before the loop is read in
// place from the outer graph; the keys and values of the loop's own steps are carried from step to step and come
// out at the end, with the picked tokens, for the caller to append.
// A row is done when it picks one of its stop ids, has taken its budget of steps or has invalid logits; the loop
// ends when every row is done or after the trip count. Rows that are done go on computing (their picks are ignored), so the batch stays aligned.
import { op, type Tensor } from "../graph/index.js";
import { toOnnxLoop, type LoopSpec } from "../graph/loop.js";
import type { ModelConfig } from "./config.js";
import { buildDecoderGraph, type LoraGraphSpec } from "./decoder.js";
import { presentNames, recentNames } from "./names.js";
import type { WeightStore } from "./weights.js";

/**
 * The loop model. Besides the decoder's inputs (the cache as past_key.i / past_value.i with cache_mask, new_mask
 * [B, 1] all true, LoRA inputs): stop_ids [B, S] (pad with -1), budget [B] (steps a row may take). Carried, fed as
 * `initial.*` (graph/loop.ts): input_ids [B, 1] (each row's last token), position_ids [B, 1], done [B], recent_mask
 * [B, 0], recent_key.i / recent_value.i [B, kvH, 0, d]. Out: `scan.picked` [steps, B, 1] (-1 where the row's
 * logits held NaN or +Infinity, or only −Infinity) and the steps' keys, values and mask as `final.present_key.i` /
 * `final.present_value.i` [B, kvH, steps, d], `final.present_mask` [B, steps].
 */
export function buildDecodeLoop(cfg: ModelConfig, weights: WeightStore, o: { lora?: LoraGraphSpec | null } = {}): Uint8Array {
  const g = buildDecoderGraph(cfg, weights, { lora: o.lora, recent: true, logits: "last" });
  const iteration = g.input("iteration", "int64", []);
  g.input("condition", "bool", []);
  const done = g.input("done", "bool", ["B"]);
  const stopIds = g.input("stop_ids", "int64", ["B", "S"]);
  const budget = g.input("budget", "int64", ["B"]);
  const logits = g.outputs.find((t) => t.name === "logits")!;
  const positions = g.inputs.find((t) => t.name === "position_ids")!;

  const best = op.argMax(logits, -1, true); // [B, 1]: on ties the lowest index, as sampling.ts's greedy pick
  // ArgMax passes over NaN and picks +Infinity or an all −Infinity row's first token, which sampling.ts refuses:
  // such a row picks -1 (the caller throws, as the stepped path does) and is done.
  const any = (t: Tensor) => op.cast(op.reduceMax(op.cast(t, "int32"), [1], false), "bool"); // [B, V] → [B]
  const invalid = op.or(any(op.or(op.isNan(logits), op.isInf(logits, { negative: false }))), op.isInf(op.reduceMax(logits, [1], false), { positive: false }));
  const picked = op.where(op.unsqueeze(invalid, [1]), -1, best);
  g.output(best, "next_ids");
  g.output(op.add(positions, 1), "next_positions");
  const stopped = any(op.equal(picked, stopIds)); // [B]
  const spent = op.less(budget, op.add(iteration, 2)); // this step was the row's last: iteration + 1 ≥ budget
  const doneNext = op.or(op.or(op.or(done, stopped), spent), invalid);
  g.output(doneNext, "done_next");
  g.output(op.not(op.cast(op.reduceMin(op.cast(doneNext, "int32"), [0], false), "bool")), "continues");
  g.output(picked, "picked");

  const spec: LoopSpec = {
    iteration: iteration.name,
    condition: "condition",
    continues: "continues",
    carried: [
      ["input_ids", "next_ids"],
      ["position_ids", "next_positions"],
      ["done", "done_next"],
      ["recent_mask", "present_mask"],
      ...Array.from({ length: cfg.layers }, (_, i): [string, string][] => [
        [recentNames(i).key, presentNames(i).key],
        [recentNames(i).value, presentNames(i).value],
      ]).flat(),
    ],
    scanned: ["picked"],
  };
  return toOnnxLoop(g, spec);
}
