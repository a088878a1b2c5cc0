// Per-row LoRA inputs of the running batch: rows filled from different slots are fed as per-row copies
// [n, …]; rows that all share one slot are fed that slot's [1, …] view (MatMul broadcasts it).
import { describe, expect, it } from "vitest";
import { loadModelConfig } from "../../../gpu-runner/src/engine/model/load-config.js";
import { PROJECTIONS } from "../../../gpu-runner/src/engine/model/names.js";
import { loadLoraAdapter } from "../../../gpu-runner/src/engine/lora/peft.js";
import { LoraSlots } from "../../../gpu-runner/src/engine/lora/slots.js";
import { RowLora } from "../../../gpu-runner/src/serve/row-lora.js";
import { fixturesDir } from "../../helpers/fixtures.js";

const FX = `${fixturesDir}/micro-llama`;

describe("RowLora", () => {
  it("feeds per-row copies for mixed slots and one slot view for a shared slot", async () => {
    const cfg = await loadModelConfig(`${FX}/base`);
    const slots = new LoraSlots(cfg, 3, 8, [...PROJECTIONS]);
    slots.load(1, await loadLoraAdapter(`${FX}/adapter`, cfg));
    const rows = new RowLora(slots, 4);
    rows.setRow(0, 1);
    rows.setRow(1, 0);
    rows.setRow(2, 1);
    const name = "lora.0.qkv.A";
    const slotView = (s: number) => slots.feeds([s])[name];

    const mixed = rows.feeds(3)[name];
    expect(mixed.dims[0]).toBe(3);
    const per = (mixed.data as Float32Array).length / 3;
    expect([...(mixed.data as Float32Array).subarray(0, per)]).toEqual([...(slotView(1).data as Float32Array)]);
    expect([...(mixed.data as Float32Array).subarray(per, 2 * per)]).toEqual([...(slotView(0).data as Float32Array)]);

    // Row 1 leaves: row 2 moves into its place, and rows 0–1 now share slot 1.
    rows.moveRow(2, 1);
    const shared = rows.feeds(2)[name];
    expect(shared.dims[0]).toBe(1);
    const view = (t: { data: unknown }) => t.data as Float32Array;
    expect(view(shared).buffer).toBe(view(slotView(1)).buffer); // the slot's own memory, not a copy
    expect(view(shared).byteOffset).toBe(view(slotView(1)).byteOffset);
    expect(rows.feeds(1, 1)[name].dims[0]).toBe(1);
  });
});
