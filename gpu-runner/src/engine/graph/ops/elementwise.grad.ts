// Backward rules for the elementwise ops of elementwise.ts. Gradients come back in the broadcast
// (output) shape; the generator sums them down to each input's shape. y = node output, dy = dL/dy.
import type { RuleTable } from "../../autodiff/types.js";
import { constScalar } from "../../autodiff/util.js";
import type { Tensor } from "../graph.js";
import { isFloat } from "../types.js";
import { cast, cos, div, equal, greater, less, log, mul, neg, pow, sin, sub, where } from "./elementwise.js";

const sign = (x: Tensor): Tensor => x.graph.node("Sign", [x], [{ dtype: x.dtype, shape: x.shape }])[0];

/** d max(a, b): the larger operand takes dy; ties split it evenly (as PyTorch does). */
function minMax(pick: (a: Tensor, b: Tensor) => Tensor, a: Tensor, b: Tensor, dy: Tensor): [Tensor, Tensor] {
  const half = mul(dy, 0.5);
  const tie = equal(a, b);
  const aWins = pick(a, b);
  const da = where(tie, half, where(aWins, dy, 0));
  const db = where(tie, half, where(aWins, 0, dy));
  return [da, db];
}

export const elementwiseGrads: RuleTable = {
  // y = a + b
  Add: ({ dy: [d] }) => [d, d],
  // y = a − b
  Sub: ({ dy: [d], needs }) => [d, needs[1] ? neg(d) : null],
  // y = a·b
  Mul: ({ x: [a, b], dy: [d], needs }) => [needs[0] ? mul(d, b!) : null, needs[1] ? mul(d, a!) : null],
  // y = a / b: da = dy / b, db = −dy·y / b
  Div: ({ x: [, b], y: [y], dy: [d], needs }) => [needs[0] ? div(d, b!) : null, needs[1] ? neg(div(mul(d, y), b!)) : null],
  // y = a^b: da = dy·b·a^(b−1), db = dy·y·ln a. A constant exponent 2 or 1 needs no Pow (ORT's is slow).
  Pow: ({ g, x: [a, b], y: [y], dy: [d], needs }) => {
    const k = constScalar(g, b);
    const da = !needs[0] ? null : k === 1 ? d : k === 2 ? mul(d, mul(a!, 2)) : mul(d, mul(b!, pow(a!, k === undefined ? sub(b!, 1) : k - 1)));
    return [da, needs[1] ? mul(d, mul(y, log(a!))) : null];
  },
  Max: ({ x: [a, b], dy: [d] }) => minMax(greater, a!, b!, d),
  Min: ({ x: [a, b], dy: [d] }) => minMax(less, a!, b!, d),
  Neg: ({ dy: [d] }) => [neg(d)],
  // y = eˣ: dx = dy·y
  Exp: ({ y: [y], dy: [d] }) => [mul(d, y)],
  Log: ({ x: [x], dy: [d] }) => [div(d, x!)],
  // y = √x: dx = dy / (2y)
  Sqrt: ({ y: [y], dy: [d] }) => [div(d, mul(y, 2))],
  // y = 1/x: dx = −dy·y²
  Reciprocal: ({ y: [y], dy: [d] }) => [neg(mul(d, mul(y, y)))],
  // y = σ(x): dx = dy·y·(1 − y)
  Sigmoid: ({ y: [y], dy: [d] }) => [mul(d, mul(y, sub(1, y)))],
  Tanh: ({ y: [y], dy: [d] }) => [mul(d, sub(1, mul(y, y)))],
  Cos: ({ x: [x], dy: [d] }) => [neg(mul(d, sin(x!)))],
  Sin: ({ x: [x], dy: [d] }) => [mul(d, cos(x!))],
  // |x|: sign(x), 0 at 0
  Abs: ({ x: [x], dy: [d] }) => [mul(d, sign(x!))],
  Identity: ({ dy: [d] }) => [d],
  // Where(c, a, b): the condition gets no gradient
  Where: ({ x: [c], dy: [d], needs }) => [null, needs[1] ? where(c!, d, 0) : null, needs[2] ? where(c!, 0, d) : null],
  // A float↔float cast passes the gradient back in the input's dtype; casts from ints have none.
  Cast: ({ x: [x], dy: [d] }) => {
    if (!isFloat(x!.dtype)) return [null];
    return [cast(d, x!.dtype)];
  },
  // Sum of inputs (variadic)
  Sum: ({ x, dy: [d] }) => x.map(() => d),
};

