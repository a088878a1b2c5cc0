// Test inputs: safetensors files written from a tensor list (zero-filled data), and the fixture adapter.
import { readFileSync } from "node:fs";
import { summarizeConfig } from "../../../../api/src/lib/model-shapes.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

export const fixtures = fixturesDir;
export const llamaSummary = summarizeConfig(JSON.parse(readFileSync(`${fixtures}/micro-llama/base/config.json`, "utf8")));
export const qwenSummary = summarizeConfig(JSON.parse(readFileSync(`${fixtures}/micro-qwen2/base/config.json`, "utf8")));
export const readFixture = (model: string, name: string) => new Uint8Array(readFileSync(`${fixtures}/${model}/adapter/${name}`));

export interface Entry {
  name: string;
  dtype?: string;
  shape: number[];
}

const sizes: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I64: 8 };

/** A safetensors file of the given tensors in order, contiguous, header padded to 8 bytes. */
export function buildSafetensors(entries: Entry[], opts: { headerPatch?: (h: Record<string, unknown>) => void; extraData?: number } = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let pos = 0;
  for (const e of entries) {
    const dtype = e.dtype ?? "F32";
    const n = e.shape.reduce((a, b) => a * b, 1) * sizes[dtype];
    header[e.name] = { dtype, shape: e.shape, data_offsets: [pos, pos + n] };
    pos += n;
  }
  opts.headerPatch?.(header);
  let json = JSON.stringify(header);
  while (json.length % 8) json += " ";
  const out = new Uint8Array(8 + json.length + pos + (opts.extraData ?? 0));
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  return out;
}

/** Every tensor name of a LoRA adapter for `layers` layers, with its shape for a model of these sizes. */
export function loraEntries(layers: number, r: number, shapes: Record<string, [number, number]>, modules = Object.keys(shapes)): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < layers; i++) {
    for (const m of modules) {
      const sub = ["q_proj", "k_proj", "v_proj", "o_proj"].includes(m) ? "self_attn" : "mlp";
      const [o, inF] = shapes[m];
      out.push({ name: `base_model.model.model.layers.${i}.${sub}.${m}.lora_A.weight`, shape: [r, inF] });
      out.push({ name: `base_model.model.model.layers.${i}.${sub}.${m}.lora_B.weight`, shape: [o, r] });
    }
  }
  return out;
}

export const configBytes = (patch: Record<string, unknown> = {}, drop: string[] = []) => {
  const base: Record<string, unknown> = JSON.parse(new TextDecoder().decode(readFixture("micro-llama", "adapter_config.json")));
  for (const k of drop) delete base[k];
  return new TextEncoder().encode(JSON.stringify({ ...base, ...patch }));
};
