// `bench serve --base`: the built-in model, or its family at a generate-bench preset's layer sizes.
import { expect, it } from "vitest";
import { benchBase } from "../../../bench/serve.js";
import { BUILTIN_MODEL_NAME, BUILTIN_SIZES } from "../../../gpu-runner/src/models/builtin.js";

it("serves the built-in model by default and a preset's layer sizes on request", () => {
  expect(benchBase("builtin")).toEqual({ name: BUILTIN_MODEL_NAME, sizes: BUILTIN_SIZES });
  expect(benchBase("small")).toEqual({ name: "tuneserve-bench-small", sizes: { hidden: 512, layers: 8, heads: 8, kvHeads: 8, headDim: 64, intermediate: 1376 } });
  expect(() => benchBase("huge")).toThrow(/--base=huge: use builtin or one of micro, tiny/);
});
