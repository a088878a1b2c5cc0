// The training FLOP count matches the peer's formula (peers/README.md) on the micro preset, by hand.
import { expect, it } from "vitest";
import { trainFlopsPerStep } from "../../../bench/train.js";
import { getPreset } from "../../../bench/presets.js";
import { parseModelConfig } from "../../../gpu-runner/src/engine/model/config.js";
import { benchConfigJson } from "../../../bench/random-model.js";

it("4·N·T + 12·L·B·S²·H + 6·N_lora·T for micro", () => {
  const p = getPreset("micro");
  const { flops, parts } = trainFlopsPerStep(parseModelConfig(benchConfigJson(p)), p);
  // Per layer: q 64·64, k/v 32·64 each, o 64·64, gate/up/down 172·64 each; plus lm_head 256·64.
  const N = 2 * (4096 + 2048 + 2048 + 4096 + 3 * 11008) + 16384;
  const nLora = 2 * 8 * (128 + 96 + 96 + 128 + 3 * (64 + 172));
  const T = 2 * 32;
  expect(parts).toEqual({ N_frozen_matmul: N, N_lora: nLora, dense: 4 * N * T, attn: 12 * 2 * 2 * 32 * 32 * 64, lora: 6 * nLora * T });
  expect(flops).toBe(4 * N * T + 12 * 2 * 2 * 32 * 32 * 64 + 6 * nLora * T);
});
