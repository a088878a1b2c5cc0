// Helpers shared by the op families: dtype checks and turning plain numbers into scalar constants.
import type { Tensor } from "../graph.js";
import { isFloat, type DType } from "../types.js";

export type TensorOrNumber = Tensor | number;

/** Lifts a number to a scalar constant of `like`'s dtype. */
export const lift = (x: TensorOrNumber, like: Tensor): Tensor => (typeof x === "number" ? like.graph.scalar(x, like.dtype) : x);

/** The tensor among two operands (at least one must be a tensor). */
export function pickTensor(a: TensorOrNumber, b: TensorOrNumber, op: string): Tensor {
  if (typeof a !== "number") return a;
  if (typeof b !== "number") return b;
  throw new Error(`${op}: at least one operand must be a tensor`);
}

export function sameDType(op: string, ...ts: Tensor[]): DType {
  const d = ts[0].dtype;
  for (const t of ts) if (t.dtype !== d) throw new Error(`${op}: dtypes differ (${ts.map((x) => `${x.name}:${x.dtype}`).join(", ")}); insert a cast`);
  return d;
}

export function requireFloat(op: string, t: Tensor): void {
  if (!isFloat(t.dtype)) throw new Error(`${op}: ${t.name} has dtype ${t.dtype}; a float tensor is required`);
}
