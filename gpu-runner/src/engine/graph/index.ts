// The graph builder's public surface: Graph/Tensor, serialization, and every op under `op`.
export { Graph, Tensor } from "./graph.js";
export { toOnnx, OPSET } from "./onnx.js";
export type { DType, Dim, Shape, FloatDType } from "./types.js";
export * as op from "./ops/all.js";
