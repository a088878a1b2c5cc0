// Serializes a Graph to ONNX protobuf bytes (onnx-proto). One opset for the whole builder: 21,
// whose signatures (axes as inputs for Reduce*/Squeeze/Unsqueeze) the ops in ops/* follow.
import onnxProto from "onnx-proto";
import type { Graph, Tensor } from "./graph.js";
import { ONNX_ELEM_TYPE, type Attr, type Shape, type TypedData } from "./types.js";

const { onnx } = onnxProto;

export const OPSET = 21;
/** IR version 10 is what opset 21 requires. */
const IR_VERSION = 10;


export function valueInfo(t: Pick<Tensor, "name" | "dtype" | "shape">) {
  return {
    name: t.name,
    type: { tensorType: { elemType: ONNX_ELEM_TYPE[t.dtype], shape: { dim: shapeDims(t.shape) } } },
  };
}

const shapeDims = (s: Shape) => s.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d }));

function attribute(name: string, a: Attr) {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case "float":
      return { name, type: T.FLOAT, f: a.value };
    case "int":
      return { name, type: T.INT, i: a.value };
    case "ints":
      return { name, type: T.INTS, ints: a.value };
    case "floats":
      return { name, type: T.FLOATS, floats: a.value };
    case "string":
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
  }
}

const bytesOf = (d: TypedData): Uint8Array => new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** `g` as a GraphProto object (onnx-proto's shape). External initializers reference the locations given to the session. */
export function graphProto(g: Graph) {
  const initializer = g.initializers.map((init) => {
    const t = init.tensor;
    const base = { name: t.name, dataType: ONNX_ELEM_TYPE[t.dtype], dims: t.shape as number[] };
    if (init.kind === "data") return { ...base, rawData: bytesOf(init.data) };
    return {
      ...base,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: "location", value: init.location },
        { key: "offset", value: String(init.offset) },
        { key: "length", value: String(init.length) },
      ],
    };
  });
  return {
    name: g.name,
    node: g.nodes.map((n) => ({
      name: n.name,
      opType: n.op,
      domain: n.domain,
      input: n.inputs.map((i) => (i ? i.name : "")),
      output: n.outputs.map((o) => (o ? o.name : "")),
      attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
    })),
    initializer,
    input: g.inputs.map(valueInfo),
    output: g.outputs.map(valueInfo),
  };
}

/** Wraps a GraphProto object in a ModelProto at the builder's opset, importing the other domains `g`'s nodes use. */
export function modelBytes(graph: onnxProto.onnx.IGraphProto, g: Graph, opts: { producer?: string } = {}): Uint8Array {
  const domains = new Set(g.nodes.map((n) => n.domain).filter((d) => d !== ""));
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: opts.producer ?? "tuneserve",
    opsetImport: [{ domain: "", version: OPSET }, ...[...domains].map((domain) => ({ domain, version: 1 }))],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Encodes `g` as an ONNX ModelProto. External initializers reference the locations given to the session. */
export function toOnnx(g: Graph, opts: { producer?: string } = {}): Uint8Array {
  return modelBytes(graphProto(g), g, opts);
}
