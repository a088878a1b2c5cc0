import { describe, expect, it } from "vitest";
import { cudaAvailable, executionProviders } from "../../../../gpu-runner/src/engine/runtime/providers.js";

describe("execution providers", () => {
  it("defaults to the CPU and parses explicit lists", () => {
    expect(executionProviders("cpu")).toEqual(["cpu"]);
    expect(executionProviders(" CUDA , cpu ")).toEqual(["cuda", "cpu"]);
  });
  it("auto picks CUDA only when its provider library and a GPU are present", () => {
    expect(executionProviders("auto")).toEqual(cudaAvailable() ? ["cuda", "cpu"] : ["cpu"]);
  });
  it("names the variable for unknown providers", () => {
    expect(() => executionProviders("tpu")).toThrow(/TUNESERVE_EXECUTION_PROVIDERS=tpu/);
    expect(() => executionProviders("")).toThrow(/TUNESERVE_EXECUTION_PROVIDERS/);
  });
});
