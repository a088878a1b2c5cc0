// The rule table: every op family's backward rules, merged and keyed by ONNX op type.
import { elementwiseGrads } from "../graph/ops/elementwise.grad.js";
import { matmulGrads } from "../graph/ops/matmul.grad.js";
import { reduceGrads } from "../graph/ops/reduce.grad.js";
import { shapeGrads } from "../graph/ops/shape.grad.js";
import type { RuleTable } from "./types.js";

function merge(...tables: RuleTable[]): RuleTable {
  const out: RuleTable = {};
  for (const t of tables) {
    for (const [k, v] of Object.entries(t)) {
      if (out[k]) throw new Error(`autodiff: two gradient rules for op ${k}`);
      out[k] = v;
    }
  }
  return out;
}

/** Backward rules for every differentiable op the graph builder emits. */
export const RULES: RuleTable = merge(elementwiseGrads, matmulGrads, reduceGrads, shapeGrads);
