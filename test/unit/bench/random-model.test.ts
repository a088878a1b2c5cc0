// Random benchmark models must have the same files, config and tensor layout as the peer's (its micro
// preset wrote ../shared/fixtures/micro-llama), with weights of the stated distributions.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getPreset } from "../../../bench/presets.js";
import { benchConfigJson, ensureBenchModel } from "../../../bench/random-model.js";
import { readSafetensors, type SafetensorsFile } from "../../../gpu-runner/src/engine/weights/safetensors.js";

const FIXTURE = resolve(__dirname, "../../../../shared/fixtures/micro-llama");
let root: string;
let dirs: { baseDir: string; adapterDir: string; created: boolean };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tuneserve-bench-"));
  dirs = await ensureBenchModel(getPreset("micro"), 0, root);
});
afterAll(() => rm(root, { recursive: true, force: true }));

const layout = (f: SafetensorsFile) => Object.fromEntries(f.names().map((n) => [n, [f.dtype(n), ...f.shape(n)].join(" ")]));
function moments(x: Float32Array): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (const v of x) {
    s += v;
    s2 += v * v;
  }
  const mean = s / x.length;
  return { mean, std: Math.sqrt(s2 / x.length - mean * mean) };
}

describe("random benchmark model", () => {
  it("writes the peer's config.json for the same preset", async () => {
    const ours = JSON.parse(await readFile(join(dirs.baseDir, "config.json"), "utf8"));
    expect(ours).toEqual(JSON.parse(await readFile(join(FIXTURE, "base/config.json"), "utf8")));
    expect(ours).toEqual(benchConfigJson(getPreset("micro")));
  });

  it("writes the peer's tensor names, dtypes and shapes for base and adapter", async () => {
    expect(layout(await readSafetensors(join(dirs.baseDir, "model.safetensors")))).toEqual(layout(await readSafetensors(join(FIXTURE, "base/model.safetensors"))));
    expect(layout(await readSafetensors(join(dirs.adapterDir, "adapter_model.safetensors")))).toEqual(
      layout(await readSafetensors(join(FIXTURE, "adapter/adapter_model.safetensors"))),
    );
    expect(JSON.parse(await readFile(join(dirs.adapterDir, "adapter_config.json"), "utf8"))).toEqual(
      JSON.parse(await readFile(join(FIXTURE, "adapter/adapter_config.json"), "utf8")),
    );
  });

  it("draws weights N(0, 0.02), norms 1 + 0.1·N(0, 1), LoRA A uniform ±1/√in, B N(0, 0.02)", async () => {
    const base = await readSafetensors(join(dirs.baseDir, "model.safetensors"));
    const emb = moments(base.tensor("model.embed_tokens.weight")); // 16384 values
    expect(Math.abs(emb.mean)).toBeLessThan(0.001);
    expect(Math.abs(emb.std - 0.02)).toBeLessThan(0.0005);
    const norms = base.names().filter((n) => n.includes("norm")).flatMap((n) => [...base.tensor(n)]);
    const nm = moments(Float32Array.from(norms));
    expect(Math.abs(nm.mean - 1)).toBeLessThan(0.02);
    expect(Math.abs(nm.std - 0.1)).toBeLessThan(0.015);
    const ad = await readSafetensors(join(dirs.adapterDir, "adapter_model.safetensors"));
    const a = ad.tensor("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"); // in = 172
    const bound = 1 / Math.sqrt(172);
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.9 * bound);
    const b = moments(Float32Array.from(ad.names().filter((n) => n.includes("lora_B")).flatMap((n) => [...ad.tensor(n)])));
    expect(Math.abs(b.std - 0.02)).toBeLessThan(0.001);
  });

  it("reuses the cached folder for the same preset and seed, and writes another for a new seed", async () => {
    const before = (await stat(join(dirs.baseDir, "model.safetensors"))).mtimeMs;
    const again = await ensureBenchModel(getPreset("micro"), 0, root);
    expect(again.created).toBe(false);
    expect((await stat(join(again.baseDir, "model.safetensors"))).mtimeMs).toBe(before);
    const other = await ensureBenchModel(getPreset("micro"), 1, root);
    expect(other.created).toBe(true);
    const w0 = (await readSafetensors(join(dirs.baseDir, "model.safetensors"))).tensor("lm_head.weight");
    const w1 = (await readSafetensors(join(other.baseDir, "model.safetensors"))).tensor("lm_head.weight");
    expect(w0).not.toEqual(w1);
  });
});
