// Our side of the peer's `matmul_1024_fp32_gflops`: the GFLOP/s of one fp32 [n, n]·[n, n] product on ORT (the
// weight a constant, pre-packed as our frozen weights are), measured in the same round as the peer's own. The
// two say how fast each side's BLAS ran that minute: a prefill is GEMM-bound, and this host's OpenBLAS has
// measured 82 and 154 GFLOP/s on one day, which moves the prefill ratio more than any change of ours.
import { Graph, op, toOnnx } from "../gpu-runner/src/engine/graph/index.js";
import { createSession, ort } from "../gpu-runner/src/engine/runtime/session.js";

/** Median GFLOP/s over `runs` runs of an [n, n]·[n, n] fp32 MatMul on `threads` intra-op threads. */
export async function gemmGflops(threads: number, n = 1024, runs = 15): Promise<number> {
  const values = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const g = new Graph("gemm_rate");
  const x = g.input("x", "float32", [n, n]);
  g.output(op.matmul(x, g.constant("float32", [n, n], values)), "y");
  const session = await createSession(toOnnx(g), { threads });
  try {
    const feeds = { x: new ort.Tensor("float32", values, [n, n]) };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const rates: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      rates.push((2 * n ** 3) / ((performance.now() - t0) / 1000) / 1e9);
    }
    rates.sort((a, b) => a - b);
    return rates[rates.length >> 1];
  } finally {
    await session.release();
  }
}
