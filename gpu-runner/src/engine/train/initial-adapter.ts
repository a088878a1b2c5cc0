// Continuing a fine-tuned model: training starts from its PEFT adapter instead of PEFT's initial state.
// The adapter must have the run's LoRA shape (rank, target modules, and scale, i.e. alpha and rsLoRA).
import { loadLoraAdapter, type LoraAdapter } from "../lora/peft.js";
import type { ModelConfig } from "../model/config.js";
import type { Projection } from "../model/names.js";
import { allFinite } from "./lora-params.js";

export async function loadInitialAdapter(dir: string, cfg: ModelConfig, want: { rank: number; scale: number; targets: readonly Projection[] }): Promise<LoraAdapter> {
  const a = await loadLoraAdapter(dir, cfg, "the initial adapter");
  const same = (x: readonly string[], y: readonly string[]) => [...x].sort().join() === [...y].sort().join();
  if (a.rank !== want.rank) throw new Error(`the initial adapter has r=${a.rank}, and this run trains r=${want.rank}; continue it with its own rank`);
  if (!same(a.targets, want.targets)) throw new Error(`the initial adapter targets ${a.targets.join(", ")}, and this run ${want.targets.join(", ")}; continue it with its own target modules`);
  if (Math.abs(a.scale - want.scale) > 1e-12 * want.scale) throw new Error(`the initial adapter scales its update by ${a.scale}, and this run by ${want.scale}; continue it with its own lora_alpha and use_rslora`);
  // An adapter from a run that diverged elsewhere: training from it would fail at its first step as if this
  // run had diverged ("lower lr"), which no learning rate can mend.
  for (const [key, w] of a.weights) {
    for (const [kind, t] of [["A", w.a], ["B", w.b]] as const) {
      if (!allFinite(t)) throw new Error(`the initial adapter's lora_${kind} of ${key} holds NaN or ±Infinity; continue a model whose adapter is sound`);
    }
  }
  return a;
}
