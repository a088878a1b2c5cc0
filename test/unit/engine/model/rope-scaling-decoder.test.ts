// The float32 decoder's RoPE (ORT's RotaryEmbedding, tables of one row per token of the batch, headsRope) against
// the float64 decoder's (composed ops, ropeOp) under each rope_scaling kind: the micro-llama fixture with its
// config.json rewritten, the prefill of a left-padded batch and greedy decode steps after it (positions far past
// the two rows of a step's tables).
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { generate } from "../../../../gpu-runner/src/engine/generate/generator.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const BASE = `${fixturesDir}/micro-llama/base`;
const SCALINGS: [string, Record<string, unknown> | null][] = [
  ["none", null],
  ["linear", { type: "linear", factor: 4 }],
  // head_dim 16: wavelengths 6.3 (kept), 20 and 63 (blended), 199 and more (divided) against 64/4 and 64/1.
  ["llama3", { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 }],
];

const prompts = [Array.from({ length: 48 }, (_, i) => (i * 37 + 11) % 256), Array.from({ length: 20 }, (_, i) => (i * 53 + 5) % 256)];

/** The largest difference over every step's logits [B·V]. */
const maxDiff = (a: Float64Array[], b: Float64Array[]): number => {
  expect(a.map((s) => s.length)).toEqual(b.map((s) => s.length));
  let m = 0;
  a.forEach((step, s) => step.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[s][i])))));
  return m;
};

describe("RoPE in the float32 decoder (RotaryEmbedding) vs the float64 one (composed)", () => {
  let root: string;
  const logits: Record<string, { f32: Float64Array[]; f64: Float64Array[] }> = {};
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "tuneserve-rope-scaling-"));
    const config = JSON.parse(readFileSync(`${BASE}/config.json`, "utf8"));
    for (const [kind, scaling] of SCALINGS) {
      const dir = join(root, kind);
      await mkdir(dir);
      await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, rope_scaling: scaling }));
      await symlink(`${BASE}/model.safetensors`, join(dir, "model.safetensors"));
      const run = async (dtype: "float32" | "float64") => {
        const model = await LoadedModel.load(dir, { dtype });
        const steps: Float64Array[] = [];
        try {
          await generate(model.session, prompts.map((tokens) => ({ tokens, maxTokens: 4, temperature: 0 })), { onLogits: (l) => steps.push(Float64Array.from(l)) });
          return steps;
        } finally {
          await model.release();
        }
      };
      logits[kind] = { f32: await run("float32"), f64: await run("float64") };
    }
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it.each(SCALINGS.map(([kind]) => kind))("agree with rope_scaling %s", (kind) => {
    expect(maxDiff(logits[kind].f32, logits[kind].f64)).toBeLessThan(1e-5);
    // The scaling shows in the logits far more than the tolerance, so a dropped one would fail the check above.
    if (kind !== "none") expect(maxDiff(logits[kind].f64, logits.none.f64)).toBeGreaterThan(1e-3);
  });
});
