// Symbolic dimension arithmetic used by shape inference: sums and products of sizes and symbols,
// and broadcasting with readable errors. Expressions remember how they were formed so the graph can
// compute them at run time (Shape → Add/Mul) when an op needs a size as a tensor.
import type { Dim, Shape } from "./types.js";

export type DimRecipe = { op: "add" | "mul"; a: Dim; b: Dim };
const recipes = new Map<string, DimRecipe>();

/** How a composite dimension string was built, or undefined for a plain symbol. */
export const dimRecipe = (d: string): DimRecipe | undefined => recipes.get(d);

const wrap = (d: Dim): string => (typeof d === "string" && /[+*]/.test(d) ? `(${d})` : String(d));

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  const s = `${wrap(a)}+${wrap(b)}`;
  recipes.set(s, { op: "add", a, b });
  return s;
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a * b;
  if (a === 1) return b;
  if (b === 1) return a;
  const s = `${wrap(a)}*${wrap(b)}`;
  recipes.set(s, { op: "mul", a, b });
  return s;
}

export const dimProduct = (dims: Shape): Dim => dims.reduce<Dim>((acc, d) => dimMul(acc, d), 1);

export const shapeStr = (s: Shape): string => `[${s.join(", ")}]`;

/** "X|1": a size that is X or 1 at run time (an input shared by all X rows or given per row); it broadcasts against X. */
export const dimOrOne = (d: string): string => `${d}|1`;

/** Numpy broadcasting of two shapes; distinct symbols or mismatched sizes are a build-time error. */
export function broadcastShapes(a: Shape, b: Shape, what: string): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da === db || db === 1 || (typeof da === "string" && db === dimOrOne(da))) out.push(da);
    else if (da === 1 || (typeof db === "string" && da === dimOrOne(db))) out.push(db);
    else if (typeof da === "number" && typeof db === "number") {
      throw new Error(`${what}: shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast (axis ${i}: ${da} vs ${db})`);
    } else if (typeof da === "string" && typeof db === "string") {
      throw new Error(`${what}: shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast (axis ${i}: ${da} vs ${db} are different symbols)`);
    } else out.push(typeof da === "number" ? da : db);
  }
  return out;
}

/** Normalizes a possibly negative axis against a rank, with a readable error. */
export function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${what}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** True when two dims are known to differ (both numbers, or both plain distinct symbols). */
export const dimsConflict = (a: Dim, b: Dim): boolean =>
  a !== b && ((typeof a === "number" && typeof b === "number") || (typeof a === "string" && typeof b === "string" && !/[+*]/.test(a + b)));
