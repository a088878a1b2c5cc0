// The adapter cache's tiers share one policy: LRU with pins and an eviction callback. Tiers: LoRA slots in
// the session (SlotTable) ← host memory (parsed tensors) ← local disk (files) ← the blob store via the API.
// A pinned entry (an in-flight sequence uses it) is never evicted; the callback frees what the entry held.

/**
 * One tier: at most `capacity` entries; inserting past it evicts the least recently used unpinned entry.
 * With `overflow`, an insert while every entry is pinned goes past the bound instead of throwing, and the
 * tier shrinks back as pins drop (the disk tier: the files are there already and a request waits for them).
 */
export class LruTier<K, V> {
  private readonly entries = new Map<K, { value: V; pins: number }>();

  constructor(
    readonly name: string,
    readonly capacity: number,
    private readonly onEvict: (key: K, value: V) => void = () => {},
    private readonly overflow = false,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`${name} cache: capacity=${capacity} must be an integer ≥ 1`);
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /** The value, marking it most recently used. */
  get(key: K): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /** Whether `set` of a new key would stay within the bound now (room, or an unpinned entry to evict). */
  canInsert(): boolean {
    return this.entries.size < this.capacity || this.evictable().length > 0;
  }

  /** Inserts or replaces `key` as most recently used; evicts LRU unpinned entries past the capacity. */
  set(key: K, value: V): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.entries.set(key, { value, pins: old.pins });
      if (old.value !== value) this.onEvict(key, old.value);
      return;
    }
    if (this.entries.size >= this.capacity) {
      const victim = this.evictable()[0];
      if (victim !== undefined) this.delete(victim);
      else if (!this.overflow) throw new Error(`${this.name} cache: all ${this.capacity} entries are pinned by running sequences; retry when one finishes`);
    }
    this.entries.set(key, { value, pins: 0 });
  }

  /** Removes `key` (it must not be pinned) and calls the eviction callback. */
  delete(key: K): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    if (e.pins > 0) throw new Error(`${this.name} cache: cannot evict ${String(key)}: ${e.pins} running sequence(s) use it`);
    this.entries.delete(key);
    this.onEvict(key, e.value);
    return true;
  }

  pin(key: K): void {
    const e = this.entries.get(key);
    if (!e) throw new Error(`${this.name} cache: cannot pin ${String(key)}: not cached`);
    e.pins++;
  }

  unpin(key: K): void {
    const e = this.entries.get(key);
    if (!e || e.pins === 0) throw new Error(`${this.name} cache: ${String(key)} is not pinned`);
    e.pins--;
    // Past the bound (an overflow tier while everything was pinned): shrink back, least recently used first.
    while (e.pins === 0 && this.entries.size > this.capacity) this.delete(this.evictable()[0]);
  }

  pins(key: K): number {
    return this.entries.get(key)?.pins ?? 0;
  }

  /** Unpinned keys, least recently used first (eviction order). */
  evictable(): K[] {
    const out: K[] = [];
    for (const [k, e] of this.entries) if (e.pins === 0) out.push(k);
    return out;
  }

  /** Keys, least recently used first. */
  keys(): K[] {
    return [...this.entries.keys()];
  }
}

/**
 * The slot tier: which adapter sits in which LoRA slot of the session (slot 0 is the base model and is
 * never handed out). `acquire` returns the adapter's slot, assigning a free or evicted one when needed;
 * the caller then loads the adapter's tensors into it.
 */
export class SlotTable {
  private readonly free: number[];
  private readonly tier: LruTier<string, number>;

  constructor(slots: number) {
    if (slots < 2) throw new Error(`slot table: ${slots} slots leave none for adapters; need ≥ 2 (slot 0 is "no adapter")`);
    this.free = Array.from({ length: slots - 1 }, (_, i) => slots - 1 - i); // pop() hands out 1, 2, …
    this.tier = new LruTier("adapter slot", slots - 1, (_, slot) => this.free.push(slot));
  }

  /** The slot of a resident adapter (marks it used), or undefined. */
  slotOf(adapter: string): number | undefined {
    return this.tier.get(adapter);
  }

  resident(adapter: string | null): boolean {
    return adapter === null || this.tier.has(adapter);
  }

  get freeCount(): number {
    return this.free.length;
  }

  /** Resident adapters no running row uses, least recently used first. */
  evictable(): string[] {
    return this.tier.evictable();
  }

  /** Resident adapters, least recently used first. */
  held(): string[] {
    return this.tier.keys();
  }

  /**
   * Slot for `adapter`, pinned once for the caller's sequence; `load: true` when the slot was just
   * assigned and needs the tensors. Null when every slot is pinned.
   */
  acquire(adapter: string): { slot: number; load: boolean } | null {
    const slot = this.tier.get(adapter);
    if (slot !== undefined) {
      this.tier.pin(adapter);
      return { slot, load: false };
    }
    if (this.free.length === 0 && this.tier.evictable().length === 0) return null;
    if (this.free.length === 0) this.tier.delete(this.tier.evictable()[0]);
    const fresh = this.free.pop() as number;
    this.tier.set(adapter, fresh);
    this.tier.pin(adapter);
    return { slot: fresh, load: true };
  }

  /** Removes an unpinned adapter (its tensors failed to load), freeing its slot. */
  forget(adapter: string): void {
    if (this.tier.has(adapter) && this.tier.pins(adapter) === 0) this.tier.delete(adapter);
  }

  /** Drops one pin taken by `acquire` (the sequence finished). */
  release(adapter: string): void {
    this.tier.unpin(adapter);
  }
}
