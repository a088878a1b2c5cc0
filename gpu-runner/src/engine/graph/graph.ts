// The graph under construction: inputs, initializers (in memory or external), nodes with inferred
// output types, and outputs. Op functions in ops/* add nodes through `Graph.node`; onnx.ts serializes.
import { dimRecipe, shapeStr } from "./dims.js";
import type { Attr, DType, Dim, Shape, TypedData } from "./types.js";

export class Tensor {
  constructor(
    readonly graph: Graph,
    /** Mutable only through Graph.output, which may rename a node's result to the output name. */
    public name: string,
    readonly dtype: DType,
    readonly shape: Shape,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
  toString(): string {
    return `${this.name}: ${this.dtype}${shapeStr(this.shape)}`;
  }
}

export type Node = {
  op: string;
  domain: string;
  name: string;
  inputs: (Tensor | null)[];
  /** null where an optional output is omitted (ONNX's empty name): the kernel need not produce it. */
  outputs: (Tensor | null)[];
  attrs: Record<string, Attr>;
};

export type Initializer =
  | { tensor: Tensor; kind: "data"; data: TypedData }
  /** Bytes held outside the protobuf: `location` names an externalData entry given to the session. */
  | { tensor: Tensor; kind: "external"; location: string; offset: number; length: number };

export type OutputSpec = { dtype: DType; shape: Shape };

export class Graph {
  readonly inputs: Tensor[] = [];
  readonly outputs: Tensor[] = [];
  readonly nodes: Node[] = [];
  readonly initializers: Initializer[] = [];
  /** Where each plain symbol can be read at run time: (tensor, axis). */
  private readonly dimSources = new Map<string, { tensor: Tensor; axis: number }>();
  private readonly dimTensors = new Map<string, Tensor>();
  private readonly scalars = new Map<string, Tensor>();
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(readonly name = "tuneserve") {}

  /** A fresh unique value name with a readable prefix. */
  fresh(prefix: string): string {
    let n: string;
    do n = `${prefix}_${this.counter++}`;
    while (this.names.has(n));
    this.names.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: the name "${name}" is already used`);
    this.names.add(name);
    return name;
  }

  private noteDims(t: Tensor): void {
    t.shape.forEach((d, axis) => {
      if (typeof d === "string" && !dimRecipe(d) && !this.dimSources.has(d)) this.dimSources.set(d, { tensor: t, axis });
    });
  }

  /** Declares a graph input. */
  input(name: string, dtype: DType, shape: Shape): Tensor {
    const t = new Tensor(this, this.claim(name), dtype, [...shape]);
    this.inputs.push(t);
    this.noteDims(t);
    return t;
  }

  /**
   * Marks a tensor as a graph output under `name`. A node result is renamed in place (no copy);
   * an input, initializer or existing output gets an Identity.
   */
  output(t: Tensor, name?: string): Tensor {
    this.own(t, "output");
    let out = t;
    const produced = this.nodes.some((n) => n.outputs.includes(t));
    if (name && name !== t.name && produced && !this.outputs.includes(t)) {
      this.claim(name);
      t.name = name;
    } else if (name && name !== t.name) {
      out = new Tensor(this, this.claim(name), t.dtype, t.shape);
      this.nodes.push({ op: "Identity", domain: "", name: this.fresh("Identity"), inputs: [t], outputs: [out], attrs: {} });
    }
    this.outputs.push(out);
    return out;
  }

  /** An initializer holding `data` in the model itself (small constants). */
  constant(dtype: DType, shape: number[], data: TypedData, name?: string): Tensor {
    const count = shape.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new Error(`constant ${name ?? ""}: ${data.length} values for shape ${shapeStr(shape)}`);
    const t = new Tensor(this, name ? this.claim(name) : this.fresh("const"), dtype, shape);
    this.initializers.push({ tensor: t, kind: "data", data });
    return t;
  }

  /** An initializer whose bytes live in an external buffer (e.g. a range of a safetensors file). */
  external(name: string, dtype: DType, shape: number[], location: string, offset: number, length: number): Tensor {
    const t = new Tensor(this, this.claim(name), dtype, shape);
    this.initializers.push({ tensor: t, kind: "external", location, offset, length });
    return t;
  }

  /** A cached scalar constant of the given dtype. */
  scalar(value: number, dtype: DType): Tensor {
    const key = `${dtype}:${Object.is(value, -0) ? "-0" : value}`;
    let t = this.scalars.get(key);
    if (!t) {
      t = this.constant(dtype, [], typedOf(dtype, [value]));
      this.scalars.set(key, t);
    }
    return t;
  }

  /** A 1-D int64 constant. */
  ints(values: number[]): Tensor {
    return this.constant("int64", [values.length], BigInt64Array.from(values.map(BigInt)));
  }

  /**
   * Adds a node; output types come from the op's shape inference. A null output spec omits that optional output
   * (as a null input is an absent optional input): it is serialized with an empty name and is null in the result.
   */
  node(op: string, inputs: (Tensor | null)[], outputs: OutputSpec[], attrs?: Record<string, Attr>, domain?: string): Tensor[];
  node(op: string, inputs: (Tensor | null)[], outputs: (OutputSpec | null)[], attrs?: Record<string, Attr>, domain?: string): (Tensor | null)[];
  node(op: string, inputs: (Tensor | null)[], outputs: (OutputSpec | null)[], attrs: Record<string, Attr> = {}, domain = ""): (Tensor | null)[] {
    for (const i of inputs) if (i) this.own(i, op);
    const outs = outputs.map((o) => (o ? new Tensor(this, this.fresh(op), o.dtype, o.shape) : null));
    this.nodes.push({ op, domain, name: this.fresh(`n_${op}`), inputs, outputs: outs, attrs });
    for (const o of outs) if (o) this.noteDims(o);
    return outs;
  }

  /** A dimension as an int64 tensor of shape [1], computed at run time from where it first appeared. */
  dim(d: Dim): Tensor {
    if (typeof d === "number") return this.ints([d]);
    const cached = this.dimTensors.get(d);
    if (cached) return cached;
    let t: Tensor;
    const recipe = dimRecipe(d);
    if (recipe) {
      const [r] = this.node(recipe.op === "add" ? "Add" : "Mul", [this.dim(recipe.a), this.dim(recipe.b)], [{ dtype: "int64", shape: [1] }]);
      t = r;
    } else {
      const src = this.dimSources.get(d);
      if (!src) throw new Error(`graph ${this.name}: the size "${d}" appears in no input or op output, so it cannot be computed`);
      [t] = this.node("Shape", [src.tensor], [{ dtype: "int64", shape: [1] }], {
        start: { kind: "int", value: src.axis },
        end: { kind: "int", value: src.axis + 1 },
      });
    }
    this.dimTensors.set(d, t);
    return t;
  }

  private own(t: Tensor, what: string): void {
    if (t.graph !== this) throw new Error(`${what}: tensor ${t.name} belongs to graph ${t.graph.name}, not ${this.name}`);
  }
}

/** A typed array of `dtype` holding `values`. */
export function typedOf(dtype: DType, values: number[]): TypedData {
  switch (dtype) {
    case "float32":
      return Float32Array.from(values);
    case "float64":
      return Float64Array.from(values);
    case "int64":
      return BigInt64Array.from(values.map((v) => BigInt(Math.trunc(v))));
    case "int32":
      return Int32Array.from(values);
    case "bool":
      return Uint8Array.from(values.map((v) => (v ? 1 : 0)));
    default:
      throw new Error(`constant of dtype ${dtype} is not supported`);
  }
}
