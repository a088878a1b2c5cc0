// Left padding: ids, per-row positions and the padding mask.
import { describe, expect, it } from "vitest";
import { padLeft } from "../../../../gpu-runner/src/engine/generate/batch.js";

describe("padLeft", () => {
  it("aligns rows at the right and numbers positions from each row's first token", () => {
    const b = padLeft([[5, 6, 7], [8]]);
    expect(b).toMatchObject({ B: 2, T: 3, pad: [0, 2] });
    expect(Array.from(b.ids, Number)).toEqual([5, 6, 7, 0, 0, 8]);
    expect(Array.from(b.positions, Number)).toEqual([0, 1, 2, 0, 0, 0]);
    expect(Array.from(b.mask)).toEqual([1, 1, 1, 0, 0, 1]);
  });
  it("rejects empty batches and empty rows", () => {
    expect(() => padLeft([])).toThrow(/at least one row/);
    expect(() => padLeft([[1], []])).toThrow(/row 1 has no tokens/);
  });
});
