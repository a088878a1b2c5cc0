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

export const attr = {
  f: (value: number): Attr => ({ kind: "float", value }),
  i: (value: number): Attr => ({ kind: "int", value }),
  ints: (value: number[]): Attr => ({ kind: "ints", value }),
  floats: (value: number[]): Attr => ({ kind: "floats", value }),
  s: (value: string): Attr => ({ kind: "string", value }),
};

export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Record<DType, number> = { float32: 4, float64: 8, float16: 2, int64: 8, int32: 4, bool: 1 };
