// JSON nesting, measured without recursion on values and on text, deep enough to overflow a recursive reader.
import { describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH, jsonDepth, jsonTextDepth } from "../../../../api/src/lib/json-depth.js";

describe("jsonDepth and jsonTextDepth", () => {
  it("count levels of objects and arrays, strings aside", () => {
    for (const [v, depth] of [[1, 0], [{}, 1], [{ a: [1, { b: "[[[" }] }, 3], [[[], [[[]]]], 4]] as [unknown, number][]) {
      expect(jsonDepth(v)).toBe(depth);
      expect(jsonTextDepth(JSON.stringify(v))).toBe(depth);
    }
    expect(jsonTextDepth('{"a": "\\"[[["}')).toBe(1);
  });

  it("measure nesting far past the stack's reach, and values stop counting past the limit", () => {
    let v: unknown = 0;
    for (let i = 0; i < 200_000; i++) v = [v];
    expect(jsonDepth(v)).toBe(MAX_JSON_DEPTH + 1);
    expect(jsonTextDepth("[".repeat(200_000))).toBe(200_000);
  });
});
