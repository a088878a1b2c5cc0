// The runner's adapter registry (disk tier): one fetch however many requests wait, pins that block
// eviction, eviction that deletes the folder, a base-model check, and an index that survives a restart.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AdapterRegistry, REFUSAL_MS } from "../../../gpu-runner/src/serve/registry.js";
import { LocalAdapterSource, SourceError, type AdapterSource } from "../../../gpu-runner/src/serve/source.js";
import { fixturesDir } from "../../helpers/fixtures.js";

const FX = `${fixturesDir}/micro-llama/adapter`;

describe("AdapterRegistry", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tuneserve-registry-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** An opened registry over the fixture adapter "a" in its own cache folder, counting the fetches it makes. */
  async function countingRegistry(folder: string) {
    const local = new LocalAdapterSource({ a: { dir: FX, baseModel: "m" } });
    const counter = { fetches: 0 };
    const reg = new AdapterRegistry({ fetch: (id) => (counter.fetches++, local.fetch(id)) }, join(dir, folder));
    await reg.open();
    return { reg, counter };
  }

  it("fetches once for concurrent requests, pins, evicts LRU unpinned folders, and reindexes on restart", async () => {
    const local = new LocalAdapterSource({ a: { dir: FX, baseModel: "m" }, b: { dir: FX, baseModel: "m" }, c: { dir: FX, baseModel: "m" } });
    let fetches = 0;
    const counting: AdapterSource = { fetch: (id) => (fetches++, local.fetch(id)) };
    const cache = join(dir, "cache");
    const reg = new AdapterRegistry(counting, cache, 2);
    await reg.open();
    const [a1, a2] = await Promise.all([reg.acquire("a", "m"), reg.acquire("a", "m")]);
    expect(fetches).toBe(1);
    expect(a1.dir).toBe(a2.dir);
    expect(existsSync(join(a1.dir, "adapter_model.safetensors"))).toBe(true);
    const b = await reg.acquire("b", "m");
    b.release();
    // "a" is pinned (twice), so "b" goes when "c" arrives.
    const c = await reg.acquire("c", "m");
    expect(reg.held().sort()).toEqual(["a", "c"]);
    // Eviction removes the folder in the background.
    await vi.waitFor(() => expect(existsSync(b.dir)).toBe(false), { timeout: 10_000 });
    a1.release();
    a2.release();
    c.release();
    expect(reg.status("a")).toBe("ready");
    expect(reg.status("b")).toBeNull();

    const again = new AdapterRegistry(counting, cache, 2);
    await again.open();
    expect(again.held().sort()).toEqual(["a", "c"]);
    await again.acquire("c", "m");
    expect(fetches).toBe(3);
  });

  it("fetches an adapter again when its folder vanished from under the cache, pinned or not", async () => {
    const { reg, counter } = await countingRegistry("cache-vanish");
    const held = await reg.acquire("a", "m");
    await rm(held.dir, { recursive: true });
    // Pinned by `held`: the entry stays and the files come back into its folder.
    const again = await reg.acquire("a", "m");
    expect(counter.fetches).toBe(2);
    expect(again.dir).toBe(held.dir);
    expect(existsSync(join(again.dir, "adapter_model.safetensors"))).toBe(true);
    held.release();
    again.release();
    await rm(held.dir, { recursive: true });
    const third = await reg.acquire("a", "m");
    expect(counter.fetches).toBe(3);
    expect(existsSync(join(third.dir, "adapter_config.json"))).toBe(true);
    third.release();
    expect(reg.held()).toEqual(["a"]);
  });

  it("keeps the folder of an adapter evicted while it is being fetched again", async () => {
    const local = new LocalAdapterSource({ a: { dir: FX, baseModel: "m" }, b: { dir: FX, baseModel: "m" } });
    let letA: () => void = () => {};
    const gate = new Promise<void>((ok) => (letA = ok));
    let fetchesOfA = 0;
    const source: AdapterSource = { fetch: async (id) => (id === "a" && fetchesOfA++ > 0 && (await gate), local.fetch(id)) };
    const reg = new AdapterRegistry(source, join(dir, "cache-evict"), 1);
    await reg.open();
    const first = await reg.acquire("a", "m");
    first.release();
    await rm(first.dir, { recursive: true });
    const again = reg.acquire("a", "m"); // its files vanished: fetched again, held at the gate
    await vi.waitFor(() => expect(fetchesOfA).toBe(2));
    // The fetch's rename target, as it would be by the time "b" evicts "a": eviction must leave it alone.
    await mkdir(first.dir);
    await writeFile(join(first.dir, "marker"), "");
    const b = await reg.acquire("b", "m");
    b.release();
    await new Promise((ok) => setTimeout(ok, 100));
    expect(existsSync(join(first.dir, "marker"))).toBe(true);
    letA();
    const a = await again;
    expect(existsSync(join(a.dir, "adapter_model.safetensors"))).toBe(true);
    a.release();
    expect(reg.held()).toEqual(["a"]);
  });

  it("pins a cached adapter before checking its files, so a download finishing meanwhile cannot evict it", async () => {
    const local = new LocalAdapterSource({ a: { dir: FX, baseModel: "m" }, b: { dir: FX, baseModel: "m" }, c: { dir: FX, baseModel: "m" } });
    const reg = new AdapterRegistry(local, join(dir, "cache-pin-race"), 2);
    await reg.open();
    (await reg.acquire("a", "m")).release();
    const c = await reg.acquire("c", "m"); // held: "a" is the only entry a new one could evict
    // The files check of "a" waits until "b" has been downloaded and indexed.
    const internals = reg as unknown as { onDisk(rec: unknown): Promise<boolean> };
    const onDisk = internals.onDisk.bind(reg);
    let checking: () => void = () => {};
    const inCheck = new Promise<void>((ok) => (checking = ok));
    let letCheck: () => void = () => {};
    const gate = new Promise<void>((ok) => (letCheck = ok));
    const spy = vi.spyOn(internals, "onDisk").mockImplementationOnce(async (rec) => (checking(), await gate, onDisk(rec)));
    const a = reg.acquire("a", "m");
    await inCheck;
    spy.mockRestore();
    await reg.acquire("b", "m").then((b) => b.release(), () => undefined);
    letCheck();
    const got = await a;
    expect(existsSync(join(got.dir, "adapter_model.safetensors"))).toBe(true);
    expect(reg.held()).toContain("a");
    got.release();
    c.release();
  });

  it("indexes a download past the bound while every entry is pinned, and evicts once the pins drop", async () => {
    const local = new LocalAdapterSource({ a: { dir: FX, baseModel: "m" }, b: { dir: FX, baseModel: "m" } });
    const reg = new AdapterRegistry(local, join(dir, "cache-overflow"), 1);
    await reg.open();
    const a = await reg.acquire("a", "m");
    const b = await reg.acquire("b", "m");
    expect(reg.held()).toEqual(["a", "b"]);
    expect(existsSync(join(b.dir, "adapter_model.safetensors"))).toBe(true);
    a.release();
    expect(reg.held()).toEqual(["b"]);
    await vi.waitFor(() => expect(existsSync(a.dir)).toBe(false));
    b.release();
    expect(reg.held()).toEqual(["b"]);
  });

  it("fetches an invalidated adapter (files the engine refused) again, held or not", async () => {
    const { reg, counter } = await countingRegistry("cache-invalidate");
    const held = await reg.acquire("a", "m");
    reg.invalidate("a"); // held: marked, fetched again by the next request into the same folder
    const again = await reg.acquire("a", "m");
    expect(counter.fetches).toBe(2);
    expect(again.dir).toBe(held.dir);
    held.release();
    again.release();
    reg.invalidate("a"); // not held: dropped, folder and all
    expect(reg.held()).toEqual([]);
    await vi.waitFor(() => expect(existsSync(held.dir)).toBe(false));
    (await reg.acquire("a", "m")).release();
    expect(counter.fetches).toBe(3);
  });

  it("answers an adapter refused on two downloads in a row with the refusal, without fetching it again", async () => {
    const { reg, counter } = await countingRegistry("cache-refused");
    const [one, two] = await Promise.all([reg.acquire("a", "m"), reg.acquire("a", "m")]);
    one.refuse("bad rank");
    two.refuse("bad rank"); // the same download refused twice: fetched again all the same
    const fresh = await reg.acquire("a", "m");
    expect(counter.fetches).toBe(2);
    fresh.refuse("bad rank");
    [one, two, fresh].forEach((h) => h.release());
    await expect(reg.acquire("a", "m")).rejects.toThrow(/refused its files on two downloads in a row \(bad rank\)/);
    expect(reg.status("a")).toBe("failed");
    expect(counter.fetches).toBe(2);
    vi.useFakeTimers({ now: Date.now() + REFUSAL_MS + 1, toFake: ["Date"] });
    try {
      (await reg.acquire("a", "m")).release(); // the refusal has lapsed: fetched once more
      expect(counter.fetches).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it("counts refusals in a row only: a download the engine took in between starts the count again", async () => {
    const { reg, counter } = await countingRegistry("cache-refused-apart");
    const first = await reg.acquire("a", "m");
    first.refuse("corrupt"); // dropped; the next download mends it
    first.release();
    const good = await reg.acquire("a", "m");
    good.release(); // served, then dropped as a deleted or evicted adapter would be
    reg.invalidate("a");
    const later = await reg.acquire("a", "m");
    expect(counter.fetches).toBe(3);
    later.refuse("corrupt"); // one refusal since the good download: fetched again, not refused for minutes
    later.release();
    (await reg.acquire("a", "m")).release();
    expect(counter.fetches).toBe(4);
  });

  it("refuses an adapter of another base model and reports unknown adapters as not found", async () => {
    const reg = new AdapterRegistry(new LocalAdapterSource({ x: { dir: FX, baseModel: "other" } }), join(dir, "cache2"));
    await reg.open();
    await expect(reg.acquire("x", "m")).rejects.toThrow(/applies to base model other, not m/);
    const err = await reg.acquire("nope", "m").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).notFound).toBe(true);
    expect(reg.status("nope")).toBe("failed");
  });
});
