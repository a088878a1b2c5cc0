// The benchmark presets must equal the PyTorch peer's PRESETS and argparse defaults, read from its source.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { getPreset, PRESET_NAMES } from "../../../bench/presets.js";
import { PEER_SCRIPT } from "../../../bench/peer.js";

const source = readFileSync(PEER_SCRIPT, "utf8");

/** Parses `"name": dict(k=v, ...)` lines of the peer's PRESETS table. */
function peerPresets(): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const m of source.matchAll(/"(\w+)": dict\(([^)]*)\)/g)) {
    out[m[1]] = Object.fromEntries(m[2].split(",").map((kv) => kv.trim().split("=")).map(([k, v]) => [k, Number(v)]));
  }
  return out;
}

function argDefault(flag: string): string {
  // default="1,8" (quoted, may hold commas) or default=128
  const m = source.match(new RegExp(`add_argument\\("${flag}"[^\\n]*default=(?:"([^"]*)"|([^,)]+))`));
  if (!m) throw new Error(`peer script: no default for ${flag}`);
  return m[1] ?? m[2];
}

describe("bench presets", () => {
  it("has exactly the peer's preset names and sizes (kv_heads defaults to heads)", () => {
    const peer = peerPresets();
    expect(Object.keys(peer).sort()).toEqual([...PRESET_NAMES].sort());
    for (const name of PRESET_NAMES) {
      const p = getPreset(name);
      const q = peer[name];
      expect({ hidden: p.hidden, layers: p.layers, heads: p.heads, kv: p.kvHeads, intermediate: p.intermediate, vocab: p.vocab, seq: p.seq, batch: p.batch }).toEqual({
        hidden: q.hidden, layers: q.layers, heads: q.heads, kv: q.kv_heads ?? q.heads, intermediate: q.intermediate, vocab: q.vocab, seq: q.seq, batch: q.batch,
      });
    }
  });

  it("uses the peer's LoRA and generation defaults", () => {
    const p = getPreset("tiny");
    expect(p.loraRank).toBe(Number(argDefault("--rank")));
    expect(p.loraAlpha).toBe(Number(argDefault("--alpha")));
    expect(p.promptLen).toBe(Number(argDefault("--prompt-len")));
    expect(p.genTokens).toBe(Number(argDefault("--gen-tokens")));
    expect(p.genBatches.join(",")).toBe(argDefault("--gen-batches"));
    expect(p.rmsEps).toBe(Number(argDefault("--rms-eps")));
    expect(p.ropeTheta).toBe(Number(argDefault("--rope-theta")));
    expect(p.loraTargets).toEqual(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]);
  });

  it("rejects unknown presets by name", () => {
    expect(() => getPreset("huge")).toThrow(/unknown preset "huge"; choose one of micro, tiny, small, medium/);
  });
});

describe("model size", () => {
  it("counts frozen matmul and LoRA parameters as the peer does (its reported params_frozen_matmul / params_lora for tiny)", async () => {
    const { frozenMatmulParams, loraParams } = await import("../../../gpu-runner/src/engine/model/names.js");
    const p = getPreset("tiny");
    const d = p.hidden / p.heads;
    const cfg = { vocab: p.vocab, hidden: p.hidden, layers: p.layers, heads: p.heads, kvHeads: p.kvHeads, headDim: d, intermediate: p.intermediate } as never;
    expect(frozenMatmulParams(cfg)).toBe(4210688);
    expect(loraParams(cfg, 8)).toBe(156160);
  });
});
