// All op families in one namespace (imported as `op`).
export * from "./elementwise.js";
export * from "./matmul.js";
export * from "./reduce.js";
export * from "./shape.js";
export * from "./nn.js";
export * from "./fused.js";
