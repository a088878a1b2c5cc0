// The worker's two adapter tiers: the session's LoRA slots and, behind them, parsed adapters in host
// memory, so an adapter evicted from its slot comes back without reading its files again.
import type { ModelConfig } from "../engine/model/config.js";
import { loadLoraAdapter, type LoraAdapter } from "../engine/lora/peft.js";
import type { LoraSlots } from "../engine/lora/slots.js";
import { LruTier, SlotTable } from "./cache.js";

/** A pinned slot (`loaded`: its tensors were just written), a load that failed, or null when every slot is pinned. */
export type SlotPin = { slot: number; loaded: boolean } | { error: string; badAdapter?: string } | null;

export class AdapterResidency {
  readonly table: SlotTable;
  private readonly host: LruTier<string, LoraAdapter>;
  /** Deleted adapters that rows still used when they were forgotten: dropped when the last such row ends. */
  private readonly gone = new Set<string>();

  constructor(
    private readonly slots: LoraSlots,
    private readonly cfg: ModelConfig,
    hostAdapters: number,
  ) {
    this.table = new SlotTable(slots.spec.slots);
    this.host = new LruTier("host adapter", hostAdapters);
  }

  /**
   * A slot holding `adapter`, pinned for one row until `release`. A failed load leaves no pin and no slot;
   * `badAdapter` names it when its files could not be read (the runner drops its copy of them).
   */
  async pin(adapter: { id: string; dir: string }): Promise<SlotPin> {
    const got = this.table.acquire(adapter.id);
    if (!got) return null;
    if (!got.load) return { slot: got.slot, loaded: false };
    let filesRead = false;
    try {
      const parsed = await this.hostAdapter(adapter);
      filesRead = true;
      this.slots.load(got.slot, parsed);
    } catch (err) {
      this.table.release(adapter.id);
      this.table.forget(adapter.id);
      return { error: err instanceof Error ? err.message : String(err), badAdapter: filesRead ? undefined : adapter.id };
    }
    return { slot: got.slot, loaded: true };
  }

  /** Drops one row's pin on `adapter`'s slot (and the adapter, when it was deleted meanwhile and this was its last row). */
  release(adapter: string): void {
    this.table.release(adapter);
    if (this.gone.has(adapter)) this.forget([adapter]);
  }

  /** Drops deleted adapters from host memory and from their slots, at once or when the last row using them ends. */
  forget(adapters: string[]): void {
    for (const id of adapters) {
      if (this.host.has(id) && this.host.pins(id) === 0) this.host.delete(id);
      this.table.forget(id);
      if (this.table.held().includes(id) || this.host.has(id)) this.gone.add(id);
      else this.gone.delete(id);
    }
  }

  /** Adapters in the session's slots or in host memory. */
  held(): string[] {
    return [...new Set([...this.table.held(), ...this.host.keys()])];
  }

  private async hostAdapter(a: { id: string; dir: string }): Promise<LoraAdapter> {
    const cached = this.host.get(a.id);
    if (cached) return cached;
    const parsed = await loadLoraAdapter(a.dir, this.cfg, a.id);
    this.host.set(a.id, parsed);
    return parsed;
  }
}
