// Plain-JS reference tensors for the op tests: row-major arrays with shapes, computed independently of ORT.
export type Arr = { shape: number[]; data: number[] };

export const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const strides = (s: number[]): number[] => s.map((_, i) => size(s.slice(i + 1)));

/** Deterministic pseudo-random values in [-1, 1). */
export function rand(shape: number[], seed: number): Arr {
  let x = seed * 2654435761 + 1;
  const data = Array.from({ length: size(shape) }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return (x / 2147483648) * 2 - 1;
  });
  return { shape, data };
}

/** Value of `a` at a multi-index of the broadcast output shape. */
function at(a: Arr, idx: number[]): number {
  const off = idx.length - a.shape.length;
  const st = strides(a.shape);
  let p = 0;
  a.shape.forEach((d, i) => (p += (d === 1 ? 0 : idx[i + off]) * st[i]));
  return a.data[p];
}

function indices(shape: number[]): number[][] {
  const out: number[][] = [];
  const n = size(shape);
  const st = strides(shape);
  for (let k = 0; k < n; k++) out.push(shape.map((d, i) => Math.floor(k / st[i]) % d));
  return out;
}

export function broadcast(arrs: Arr[], f: (...v: number[]) => number): Arr {
  const rank = Math.max(...arrs.map((a) => a.shape.length));
  const shape = Array.from({ length: rank }, (_, i) =>
    Math.max(...arrs.map((a) => (i < rank - a.shape.length ? 1 : a.shape[i - (rank - a.shape.length)]))),
  );
  return { shape, data: indices(shape).map((idx) => f(...arrs.map((a) => at(a, idx)))) };
}

export function matmul(a: Arr, b: Arr): Arr {
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 1];
  const batch = broadcast([{ shape: a.shape.slice(0, -2), data: [] }, { shape: b.shape.slice(0, -2), data: [] }].map((x) => ({ ...x, data: Array(size(x.shape)).fill(0) })), () => 0).shape;
  const shape = [...batch, m, n];
  const data = indices(shape).map((idx) => {
    const bi = idx.slice(0, -2);
    const [i, j] = idx.slice(-2);
    let s = 0;
    for (let q = 0; q < k; q++) s += at(a, [...bi, i, q]) * at(b, [...bi, q, j]);
    return s;
  });
  return { shape, data };
}

export function reduce(a: Arr, axis: number, f: (xs: number[]) => number): Arr {
  const shape = a.shape.map((d, i) => (i === axis ? 1 : d));
  const data = indices(shape).map((idx) => {
    const xs: number[] = [];
    for (let q = 0; q < a.shape[axis]; q++) xs.push(at(a, idx.map((v, i) => (i === axis ? q : v))));
    return f(xs);
  });
  return { shape, data };
}

export function transpose(a: Arr, perm: number[]): Arr {
  const shape = perm.map((p) => a.shape[p]);
  return { shape, data: indices(shape).map((idx) => at(a, perm.map((_, i) => idx[perm.indexOf(i)]))) };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(b[i])));
  return m;
}
