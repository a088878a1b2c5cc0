// Structure of the training graph: its inputs and outputs per mode, PEFT-named parameters, and no
// Transpose of a frozen weight anywhere (ORT would fold it into a second copy of the weight).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModelConfig } from "../../../../gpu-runner/src/engine/model/load-config.js";
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
    expect(outs.filter((n) => n.startsWith("grad.")).length).toBe(mode === "grads" ? tg.params.length : 0);
    // train: the optimizer works on flat vectors [P] over every parameter.
    const P = tg.params.reduce((n, p) => n + p.shape[0] * p.shape[1], 0);
    for (const name of ["acc_out", "new_params", "m_out", "v_out"]) expect(g.outputs.find((t) => t.name === name)?.shape ?? null).toEqual(mode === "train" ? [P] : null);
    for (const name of ["acc", "m", "v"]) expect(g.inputs.find((t) => t.name === name)?.shape ?? null).toEqual(mode === "train" ? [P] : null);
    expect(ins.includes("lr")).toBe(mode === "train");
    expect(outs.includes("grad_norm")).toBe(mode === "train");
    const frozen = new Set(g.initializers.map((i) => i.tensor));
    const bad = g.nodes.filter((n) => n.op === "Transpose" && n.inputs.some((t) => t && frozen.has(t)));
    expect(bad.map((n) => n.name)).toEqual([]);
  });
});
