// Structure of the training graph: its inputs and outputs per mode, PEFT-named parameters, and no
// Transpose of a frozen weight anywhere (ORT would fold it into a second copy of the weight).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModelConfig } from "../../../../gpu-runner/src/engine/model/config.js";
import { openWeights } from "../../../../gpu-runner/src/engine/model/weights.js";
import { buildTrainGraph } from "../../../../gpu-runner/src/engine/train/train-graph.js";

const dir = join(import.meta.dirname, "../../../../../shared/fixtures/micro-qwen2/base");

describe("buildTrainGraph", () => {
  it.each(["eval", "grads", "train"] as const)("%s mode: inputs, outputs and no transposed frozen weight", async (mode) => {
    const cfg = await loadModelConfig(dir);
    const tg = buildTrainGraph(cfg, await openWeights(dir), { mode, rank: 4, targets: ["q_proj", "down_proj"], maxGradNorm: 1 });
    const g = tg.graph;
    expect(tg.params.map((p) => p.name).slice(0, 2)).toEqual([
      "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
      "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
    ]);
    expect(tg.params).toHaveLength(cfg.layers * 2 * 2);
    const outs = g.outputs.map((t) => t.name);
    const ins = g.inputs.map((t) => t.name);
    expect(outs[0]).toBe("loss");
    const per = { eval: [], grads: ["grad."], train: ["acc_out.", "new.", "m_out.", "v_out."] }[mode];
    for (const prefix of per) expect(outs.filter((n) => n.startsWith(prefix))).toHaveLength(tg.params.length);
    expect(ins.includes("lr")).toBe(mode === "train");
    expect(ins.filter((n) => n.startsWith("acc.")).length).toBe(mode === "train" ? tg.params.length : 0);
    expect(outs.includes("grad_norm")).toBe(mode === "train");
    const frozen = new Set(g.initializers.map((i) => i.tensor));
    const bad = g.nodes.filter((n) => n.op === "Transpose" && n.inputs.some((t) => t && frozen.has(t)));
    expect(bad.map((n) => n.name)).toEqual([]);
  });
});
