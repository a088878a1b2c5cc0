// The contract between the gradient generator and the per-op backward rules (graph/ops/*.grad.ts):
// a rule sees one forward node and the gradients of its outputs, and returns one gradient per input.
import type { Graph, Node, Tensor } from "../graph/graph.js";

export type GradContext = {
  g: Graph;
  node: Node;
  /** The node's inputs (null where an optional input is absent). */
  x: (Tensor | null)[];
  /** The node's outputs. */
  y: Tensor[];
  /** One gradient per output, shaped like that output (zeros are filled in for unused outputs). */
  dy: Tensor[];
  /** Which inputs lie on a path to a trainable tensor; a rule may return null for the others. */
  needs: boolean[];
  /** The values of a constant int64 input (Reduce axes, Squeeze axes …); throws if not constant. */
  ints(t: Tensor | null): number[];
};

/**
 * A backward rule: one entry per forward input, the gradient w.r.t. that input or null. A gradient may
 * have the broadcast (output) shape; the generator sums it down to the input's shape.
 */
export type GradRule = (c: GradContext) => (Tensor | null)[];

export type RuleTable = Record<string, GradRule>;

/** Thrown when the backward walk meets an op that has no entry in the rule table. */
export class MissingGradientRule extends Error {
  constructor(
    readonly op: string,
    readonly nodeName: string,
  ) {
    super(`autodiff: no gradient rule for op ${op} (node ${nodeName}); add one to the rule table in graph/ops/*.grad.ts or keep the op off the path to trainable tensors`);
    this.name = "MissingGradientRule";
  }
}
