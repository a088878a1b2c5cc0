// LoRA's two settings that PEFT files, training specs and the engine read alike: which projections an adapter
// targets, and the scale its update is multiplied by.
import { PROJECTIONS, type Projection } from "../model/names.js";

/** The scale of the update B·A: alpha/r, or alpha/√r with rsLoRA (use_rslora). */
export const loraScale = (r: number, alpha: number, rslora: boolean): number => (rslora ? alpha / Math.sqrt(r) : alpha / r);

/**
 * The projections a target list names, in the model's order; "all-linear" (PEFT's shorthand for every linear
 * layer but the output head) is all seven. A name that is not a projection is an error naming them.
 */
export function projectionTargets(targets: "all-linear" | readonly string[], where: string): Projection[] {
  if (targets === "all-linear") return [...PROJECTIONS];
  const unknown = targets.filter((m) => !(PROJECTIONS as readonly string[]).includes(m));
  if (unknown.length) throw new Error(`${where}: target_modules ${JSON.stringify(unknown)} are not projections of this model; use "all-linear" or any of ${PROJECTIONS.join(", ")}`);
  return PROJECTIONS.filter((m) => targets.includes(m));
}
