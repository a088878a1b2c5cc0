// bench generate's summary over rounds: each entry's median throughput, and each ratio the median of the
// rounds' own ours/peer ratios (so a slow minute on one side of one round moves nothing).
import { describe, expect, it } from "vitest";
import { gemmRates, medianEntries, medianRatios, ratios } from "../../../bench/generate.js";
import { gemmGflops } from "../../../bench/gemm-rate.js";

const entry = (decode: number, prefill: number, rss = 100) => ({ mode: "lora_unmerged" as const, batch: 1, decode_tok_s: decode, prefill_tok_s: prefill, peak_rss_mb: rss });

describe("bench generate rounds", () => {
  it("takes each entry's median throughput and highest peak RSS", () => {
    const [m] = medianEntries([[entry(900, 10)], [entry(500, 30, 120)], [entry(1000, 20)]]);
    expect(m).toMatchObject({ decode_tok_s: 900, prefill_tok_s: 20, peak_rss_mb: 120 });
  });

  it("takes the median of the rounds' ratios, pairing each round's runs", () => {
    const peer = (decode: number) => ({ generate: [entry(decode, 10)] });
    // Round 2's host was slow for ours only: its low ratio is outvoted.
    const rounds = [ratios([entry(900, 10)], peer(300)), ratios([entry(450, 10)], peer(300)), ratios([entry(600, 10)], peer(200))];
    expect(medianRatios(rounds)).toEqual({ lora_unmerged_b1: { decode_tok_s: 3, prefill_tok_s: 1 } });
    expect(medianRatios([null])).toBeNull();
  });

  it("reports each round's GEMM rate, ours and the peer's, null where the peer gave none", () => {
    const rounds = [{ oursGemm: 130.2, peer: { matmul_1024_fp32_gflops: 82 } }, { oursGemm: 128, peer: null }, { oursGemm: 151, peer: { matmul_1024_fp32_gflops: "?" } }];
    expect(gemmRates(rounds)).toEqual({ ours: [130.2, 128, 151], peer: [82, null, null] });
  });

  it("measures our GEMM rate as a positive, finite GFLOP/s", async () => {
    const rate = await gemmGflops(1, 64, 3);
    expect(Number.isFinite(rate) && rate > 0).toBe(true);
  });
});
