// The gradient generator: walks the forward graph backwards from a scalar loss, only through nodes that
// lie on a path from a trainable tensor to the loss, applying each op's rule and summing contributions.
import type { Graph, Node, Tensor } from "../graph/graph.js";
import { op } from "../graph/index.js";
import { isFloat } from "../graph/types.js";
import { unbroadcast } from "./broadcast.js";
import { RULES } from "./rules.js";
import { MissingGradientRule, type GradContext, type RuleTable } from "./types.js";
import { constInts, zerosLike } from "./util.js";

export type GradientOptions = {
  /** The gradient of the loss itself (default: 1); lets a caller scale or chain. */
  seed?: Tensor;
  /** The rule table (default: every rule in graph/ops/*.grad.ts). */
  rules?: RuleTable;
};

/** Tensors that depend on any of `wrt` through float-valued edges (gradients cannot cross int/bool). */
function forwardReach(nodes: Node[], wrt: Tensor[]): Set<Tensor> {
  const reach = new Set<Tensor>(wrt);
  for (const n of nodes) {
    if (!n.inputs.some((i) => i && reach.has(i))) continue;
    for (const o of n.outputs) if (o && isFloat(o.dtype)) reach.add(o);
  }
  return reach;
}

/** Nodes the loss depends on, in forward order. */
function backwardReach(nodes: Node[], loss: Tensor): Set<Node> {
  const producer = new Map<Tensor, Node>();
  for (const n of nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const seen = new Set<Node>();
  const stack = [loss];
  while (stack.length) {
    const t = stack.pop()!;
    const n = producer.get(t);
    if (!n || seen.has(n)) continue;
    seen.add(n);
    for (const i of n.inputs) if (i) stack.push(i);
  }
  return seen;
}

/** A node's outputs for its rule, which sees (and gets a gradient for) every one: none may be omitted. */
function everyOutput(n: Node): Tensor[] {
  return n.outputs.map((t, i) => {
    if (!t) throw new Error(`autodiff: node ${n.name} (${n.op}) omits output ${i}, which its gradient rule reads; keep that output, or keep the node off the path to trainable tensors`);
    return t;
  });
}

/**
 * Adds the backward pass of `loss` w.r.t. each tensor in `wrt` to `loss.graph`. Returns the gradient of
 * every `wrt` tensor (shaped like it); a tensor the loss does not depend on gets zeros.
 */
export function gradients(loss: Tensor, wrt: Tensor[], o: GradientOptions = {}): Map<Tensor, Tensor> {
  const g: Graph = loss.graph;
  const rules = o.rules ?? RULES;
  if (!isFloat(loss.dtype)) throw new Error(`gradients: loss ${loss} must be a float tensor`);
  const nodes = [...g.nodes]; // snapshot: the backward nodes appended below are not walked
  const reach = forwardReach(nodes, wrt);
  const upstream = backwardReach(nodes, loss);
  const grads = new Map<Tensor, Tensor>();
  const accumulate = (t: Tensor, d: Tensor) => {
    const prev = grads.get(t);
    grads.set(t, prev ? op.add(prev, d) : d);
  };
  accumulate(loss, o.seed ?? (loss.rank === 0 ? g.scalar(1, loss.dtype) : op.expand(g.scalar(1, loss.dtype), loss.shape)));

  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if (!upstream.has(n)) continue;
    const needs = n.inputs.map((i) => !!i && reach.has(i));
    if (!needs.some(Boolean)) continue;
    const douts = n.outputs.map((t) => (t ? grads.get(t) : undefined));
    if (douts.every((d) => !d)) continue;
    const rule = rules[n.op];
    if (!rule || n.domain !== "") throw new MissingGradientRule(n.domain ? `${n.domain}:${n.op}` : n.op, n.name);
    const y = everyOutput(n);
    const ctx: GradContext = {
      g,
      node: n,
      x: n.inputs,
      y,
      dy: y.map((t, i) => douts[i] ?? zerosLike(t)),
      needs,
      ints: (t) => constInts(g, t, `${n.op} node ${n.name}`),
    };
    const dx = rule(ctx);
    if (dx.length !== n.inputs.length) {
      throw new Error(`autodiff: the rule for ${n.op} returned ${dx.length} gradients for ${n.inputs.length} inputs (node ${n.name})`);
    }
    dx.forEach((d, i) => {
      const x = n.inputs[i];
      if (!d || !x || !needs[i]) return;
      if (d.dtype !== x.dtype) throw new Error(`autodiff: the rule for ${n.op} gave a ${d.dtype} gradient for ${x} (node ${n.name})`);
      accumulate(x, unbroadcast(d, x));
    });
  }
  const out = new Map<Tensor, Tensor>();
  for (const w of wrt) out.set(w, grads.get(w) ?? zerosLike(w));
  return out;
}
