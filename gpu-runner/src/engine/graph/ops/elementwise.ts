// Elementwise ops with numpy broadcasting: arithmetic, unary math, comparisons, Where and Cast.
// Forward builders live here; the training issue adds each op's backward rule beside it in this file.
import { broadcastShapes } from "../dims.js";
import type { Tensor } from "../graph.js";
import { ONNX_ELEM_TYPE, type DType } from "../types.js";
import { lift, pickTensor, requireFloat, sameDType, type TensorOrNumber } from "./util.js";

function binary(op: string, a: TensorOrNumber, b: TensorOrNumber, outDType?: DType): Tensor {
  const like = pickTensor(a, b, op);
  const x = lift(a, like);
  const y = lift(b, like);
  const dtype = sameDType(op, x, y);
  const shape = broadcastShapes(x.shape, y.shape, op);
  return like.graph.node(op, [x, y], [{ dtype: outDType ?? dtype, shape }])[0];
}

function unary(op: string, x: Tensor, float = true): Tensor {
  if (float) requireFloat(op, x);
  return x.graph.node(op, [x], [{ dtype: x.dtype, shape: x.shape }])[0];
}

// x, y: broadcastable → out: broadcast shape
export const add = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("Add", a, b);
export const sub = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("Sub", a, b);
export const mul = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("Mul", a, b);
export const div = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("Div", a, b);
export const pow = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("Pow", a, b);
export const max = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("Max", a, b);
export const min = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("Min", a, b);

// Comparisons return bool with the broadcast shape.
export const equal = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("Equal", a, b, "bool");
export const less = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("Less", a, b, "bool");
export const lessOrEqual = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("LessOrEqual", a, b, "bool");
export const greater = (a: TensorOrNumber, b: TensorOrNumber): Tensor => binary("Greater", a, b, "bool");
export const and = (a: Tensor, b: Tensor): Tensor => binary("And", a, b, "bool");
export const or = (a: Tensor, b: Tensor): Tensor => binary("Or", a, b, "bool");
export const not = (x: Tensor): Tensor => unary("Not", x, false);

/** IsNaN(x): bool, true where x is NaN. */
export function isNan(x: Tensor): Tensor {
  requireFloat("IsNaN", x);
  return x.graph.node("IsNaN", [x], [{ dtype: "bool", shape: x.shape }])[0];
}

/** IsInf(x): bool, true where x is +Infinity (`positive`) or −Infinity (`negative`); both by default. */
export function isInf(x: Tensor, o: { positive?: boolean; negative?: boolean } = {}): Tensor {
  requireFloat("IsInf", x);
  const flag = (on: boolean | undefined) => ({ kind: "int" as const, value: on === false ? 0 : 1 });
  return x.graph.node("IsInf", [x], [{ dtype: "bool", shape: x.shape }], { detect_positive: flag(o.positive), detect_negative: flag(o.negative) })[0];
}

export const neg = (x: Tensor): Tensor => unary("Neg", x, false);
export const exp = (x: Tensor): Tensor => unary("Exp", x);
export const log = (x: Tensor): Tensor => unary("Log", x);
export const sqrt = (x: Tensor): Tensor => unary("Sqrt", x);
export const reciprocal = (x: Tensor): Tensor => unary("Reciprocal", x);
export const sigmoid = (x: Tensor): Tensor => unary("Sigmoid", x);
export const tanh = (x: Tensor): Tensor => unary("Tanh", x);
export const cos = (x: Tensor): Tensor => unary("Cos", x);
export const sin = (x: Tensor): Tensor => unary("Sin", x);
export const abs = (x: Tensor): Tensor => unary("Abs", x, false);

/** silu(x) = x·sigmoid(x) (ORT fuses it to QuickGelu for float32; see TOOLCHAIN on float64). */
export const silu = (x: Tensor): Tensor => mul(x, sigmoid(x));

/** Where(cond, a, b): cond is bool; a and b share a dtype; all three broadcast. */
export function where(cond: Tensor, a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (cond.dtype !== "bool") throw new Error(`Where: condition ${cond.name} must be bool, got ${cond.dtype}`);
  const like = pickTensor(a, b, "Where");
  const x = lift(a, like);
  const y = lift(b, like);
  const dtype = sameDType("Where", x, y);
  const shape = broadcastShapes(broadcastShapes(cond.shape, x.shape, "Where"), y.shape, "Where");
  return like.graph.node("Where", [cond, x, y], [{ dtype, shape }])[0];
}

/** Cast(x) to `to`; a no-op cast returns x itself. */
export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return x;
  return x.graph.node("Cast", [x], [{ dtype: to, shape: x.shape }], { to: { kind: "int", value: ONNX_ELEM_TYPE[to] } })[0];
}
