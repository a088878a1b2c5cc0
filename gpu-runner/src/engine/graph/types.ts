// Core types of the graph builder: element types, symbolic shapes and ONNX attributes.
export type DType = "float32" | "float64" | "float16" | "int64" | "int32" | "bool";
/** A dimension: a known size, or a symbol ("B", "T") or expression ("P+T", "B*T") fixed at run time. */
export type Dim = number | string;
export type Shape = readonly Dim[];

export type FloatDType = "float32" | "float64";
export const isFloat = (d: DType): boolean => d === "float32" || d === "float64" || d === "float16";

/** An ONNX attribute value with its type spelled out (a whole-valued float must still be FLOAT). */
export type Attr =
  | { kind: "float"; value: number }
  | { kind: "int"; value: number }
  | { kind: "ints"; value: number[] }
  | { kind: "floats"; value: number[] }
  | { kind: "string"; value: string };

/** ONNX's TensorProto element type of each dtype. */
export const ONNX_ELEM_TYPE: Record<DType, number> = { float32: 1, float64: 11, float16: 10, int64: 7, int32: 6, bool: 9 };

/** The float arrays tensors live in on the host (float32 to serve and train, float64 for the checks). */
export type FloatArray = Float32Array | Float64Array;

export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;
