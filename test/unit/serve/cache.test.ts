// The cache tiers' shared policy: LRU order, pins that block eviction, the eviction callback, and the
// slot table that hands LoRA slots to adapters.
import { describe, expect, it } from "vitest";
import { LruTier, SlotTable } from "../../../gpu-runner/src/serve/cache.js";

describe("LruTier", () => {
  it("evicts the least recently used unpinned entry and reports it", () => {
    const evicted: string[] = [];
    const t = new LruTier<string, number>("test", 2, (k) => evicted.push(k));
    t.set("a", 1);
    t.set("b", 2);
    t.get("a"); // a is now the most recent
    t.set("c", 3);
    expect(evicted).toEqual(["b"]);
    expect(t.keys()).toEqual(["a", "c"]);
  });

  it("never evicts a pinned entry and refuses to insert when all are pinned", () => {
    const evicted: string[] = [];
    const t = new LruTier<string, number>("test", 2, (k) => evicted.push(k));
    t.set("a", 1);
    t.set("b", 2);
    t.pin("a");
    t.set("c", 3);
    expect(evicted).toEqual(["b"]);
    t.pin("c");
    expect(t.canInsert()).toBe(false);
    expect(() => t.set("d", 4)).toThrow(/all 2 entries are pinned/);
    expect(() => t.delete("a")).toThrow(/running sequence/);
    t.unpin("a");
    expect(t.evictable()).toEqual(["a"]);
    t.set("d", 4);
    expect(evicted).toEqual(["b", "a"]);
    expect(() => t.unpin("a")).toThrow(/not pinned/);
  });

  it("with overflow, inserts past the bound while every entry is pinned and shrinks back as pins drop", () => {
    const evicted: string[] = [];
    const t = new LruTier<string, number>("test", 2, (k) => evicted.push(k), true);
    t.set("a", 1);
    t.set("b", 2);
    t.pin("a");
    t.pin("b");
    t.set("c", 3);
    t.pin("c");
    expect(t.keys()).toEqual(["a", "b", "c"]);
    expect(evicted).toEqual([]);
    t.unpin("b"); // three entries, b the only unpinned one: it goes
    expect(evicted).toEqual(["b"]);
    t.unpin("c"); // back within the bound: c stays
    expect(t.keys()).toEqual(["a", "c"]);
  });

  it("calls the callback for a replaced value", () => {
    const evicted: [string, number][] = [];
    const t = new LruTier<string, number>("test", 3, (k, v) => evicted.push([k, v]));
    t.set("a", 1);
    t.set("a", 2);
    expect(evicted).toEqual([["a", 1]]);
    expect(t.get("a")).toBe(2);
    expect(() => new LruTier("x", 0)).toThrow(/capacity=0 must be an integer ≥ 1/);
  });
});

describe("SlotTable", () => {
  it("assigns slots 1.., reuses a resident adapter's slot, and recycles evicted slots", () => {
    const s = new SlotTable(3); // slots 1 and 2 for adapters
    expect(s.acquire("a")).toEqual({ slot: 1, load: true });
    expect(s.acquire("b")).toEqual({ slot: 2, load: true });
    expect(s.acquire("a")).toEqual({ slot: 1, load: false });
    expect(s.acquire("c")).toBeNull(); // all pinned
    s.release("b");
    expect(s.evictable()).toEqual(["b"]);
    expect(s.acquire("c")).toEqual({ slot: 2, load: true });
    expect(s.held().sort()).toEqual(["a", "c"]);
    expect(s.resident("b")).toBe(false);
    expect(s.resident(null)).toBe(true);
    s.release("c");
    s.forget("c");
    expect(s.freeCount).toBe(1);
  });
});
