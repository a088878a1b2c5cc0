// op.rotaryEmbedding (ORT's com.microsoft RotaryEmbedding) against plain JS, for what headsRope relies on: a 3-D
// input [B, S, heads·d] split by num_heads, rotate-half (interleaved = 0), and each token (b, s) rotated by row
// position_ids[b, s] of the cos/sin tables [P, d/2], whatever the row: out of order, repeated, past B·S, and with
// position_ids [1, 1] (one token) read as a row index too.
import { describe, expect, it } from "vitest";
import { Graph, op } from "../../../../gpu-runner/src/engine/graph/index.js";
import { maxAbsDiff, rand, type Arr } from "./ref.js";
import { runGraph } from "./run.js";

const HEADS = 3;
const D = 8;
const P = 10;
// Independent values (not cos² + sin² = 1), so a swapped table or a wrong column shows.
const cos = rand([P, D / 2], 31);
const sin = rand([P, D / 2], 32);

/** out[j] = x[j]·cos[p][j mod d/2] + rotate_half(x)[j]·sin[p][j mod d/2], with rotate_half(x) = [−x₂, x₁]. */
function reference(x: Arr, rows: number[]): number[] {
  const out: number[] = [];
  rows.forEach((p, bs) => {
    for (let h = 0; h < HEADS; h++) {
      const v = x.data.slice((bs * HEADS + h) * D, (bs * HEADS + h + 1) * D);
      for (let j = 0; j < D; j++) {
        const i = j % (D / 2);
        const rot = j < D / 2 ? -v[j + D / 2] : v[j - D / 2];
        out.push(v[j] * cos.data[p * (D / 2) + i] + rot * sin.data[p * (D / 2) + i]);
      }
    }
  });
  return out;
}

describe("op.rotaryEmbedding (ORT's RotaryEmbedding)", () => {
  it.each([
    [2, 3, [7, 0, 9, 2, 2, 5]],
    [1, 1, [4]],
    [3, 1, [9, 0, 3]],
    [1, 4, [3, 2, 1, 0]],
  ])("rotates [%i, %i, heads·d] by the table rows position_ids names (%j)", async (B, S, rows) => {
    const g = new Graph("rotary");
    const x = g.input("x", "float32", ["B", "S", HEADS * D]);
    const ids = g.input("ids", "int64", ["B", "S"]);
    const y = op.rotaryEmbedding(x, ids, g.constant("float32", [P, D / 2], Float32Array.from(cos.data)), g.constant("float32", [P, D / 2], Float32Array.from(sin.data)), HEADS);
    g.output(y, "y");
    const xs = rand([B, S, HEADS * D], 30 + B * 10 + S);
    const out = (await runGraph(g, { x: xs, ids: { shape: [B, S], data: rows } })).y;
    expect(out.shape).toEqual([B, S, HEADS * D]);
    expect(maxAbsDiff(out.data, reference(xs, rows))).toBeLessThan(1e-6);
  });

  it("refuses float64 by name (ORT has no float64 kernel)", () => {
    const g = new Graph("rotary64");
    const x = g.input("x", "float64", ["B", "S", HEADS * D]);
    const t = g.constant("float32", [P, D / 2], Float32Array.from(cos.data));
    expect(() => op.rotaryEmbedding(x, g.input("ids", "int64", ["B", "S"]), t, t, HEADS)).toThrow(/rotaryEmbedding: x has dtype float64/);
  });
});
