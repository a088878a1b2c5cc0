// Continuous batching with mixed adapters: every sequence gets the same greedy tokens as when it runs
// alone through the engine's static generate(), although sequences join and leave at different steps,
// share one batch across several adapters and fewer slots than adapters force evictions.
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeRandomAdapter } from "../../../bench/random-model.js";
import { getPreset } from "../../../bench/presets.js";
import { generate } from "../../../gpu-runner/src/engine/generate/generator.js";
import { createRng } from "../../../gpu-runner/src/engine/generate/rng.js";
import { loadLoraAdapter } from "../../../gpu-runner/src/engine/lora/peft.js";
import { LoadedModel } from "../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { Scheduler, type SeqRequest, type SeqResult } from "../../../gpu-runner/src/serve/scheduler.js";
import { fixturesDir } from "../../helpers/fixtures.js";

const FX = `${fixturesDir}/micro-llama`;
const ref = JSON.parse(readFileSync(`${FX}/reference.json`, "utf8"));

describe("Scheduler (continuous batching, mixed adapters)", () => {
  let dir: string;
  let model: LoadedModel;
  const adapters: { id: string; dir: string }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tuneserve-sched-"));
    const p = getPreset("micro");
    for (let i = 0; i < 4; i++) {
      const d = join(dir, `a${i}`);
      await writeRandomAdapter(d, { ...p, loraRank: 4 + 2 * (i % 2) }, { seed: 100 + i, bStd: 0.3 });
      adapters.push({ id: `ad-${i}`, dir: d });
    }
    adapters.push({ id: "fixture", dir: `${FX}/adapter` });
    // 4 slots = the base slot + 3 adapter slots for 5 adapters: some requests wait and slots get evicted.
    model = await LoadedModel.load(`${FX}/base`, { slots: 4, rank: 8 });
  });
  afterAll(async () => {
    await model.release();
    await rm(dir, { recursive: true, force: true });
  });

  /** The oracle: one sequence alone through generate() with its adapter in slot 1. */
  async function alone(req: SeqRequest): Promise<number[]> {
    const slots = model.slots!;
    if (req.adapter) slots.load(1, await loadLoraAdapter(req.adapter.dir, model.cfg));
    const { results } = await generate(model.session, [{ ...req, adapterSlot: req.adapter ? 1 : 0 }], { loraFeeds: model.loraFeeds() });
    return results[0].tokens;
  }

  /** A scheduler whose answers land in `outcome` as "ok:<tokens, comma-joined>" or "err:<message>". */
  function startScheduler(o: { maxBatch: number; maxContext: number; policy: "mixed" | "per-adapter" }, session = model.session) {
    const outcome = new Map<string, string>();
    const sched = new Scheduler(session, model.slots, {
      ...o,
      tokenizer: null,
      events: { onToken() {}, onDone: (id, r) => outcome.set(id, `ok:${r.tokens.join(",")}`), onError: (id, m) => outcome.set(id, `err:${m}`) },
    });
    const settled = async (n: number) => {
      while (outcome.size < n) await new Promise((ok) => setTimeout(ok, 2));
    };
    return { sched, outcome, settled };
  }

  it("gives each sequence of a mixed batch the tokens it gets alone", async () => {
    const results = new Map<string, SeqResult>();
    const streamed = new Map<string, number[]>();
    const sched = new Scheduler(model.session, model.slots, {
      maxBatch: 6,
      maxContext: 48,
      policy: "mixed",
      tokenizer: null,
      events: {
        onToken: (id, t) => t !== null && streamed.set(id, [...(streamed.get(id) ?? []), t]),
        onDone: (id, r) => results.set(id, r),
        onError: (id, m) => results.set(id, { tokens: [], text: m, finishReason: "stop", promptTokens: -1, completionTokens: 0 }),
      },
    });
    const prompts = ref.input_ids as number[][];
    const reqs: SeqRequest[] = Array.from({ length: 11 }, (_, i) => ({
      id: `r${i}`,
      tokens: prompts[i % 2].slice(i % 5, (i % 5) + 1 + ((i * 5) % 11)),
      adapter: i % 6 === 5 ? null : adapters[i % adapters.length],
      maxTokens: 3 + ((i * 7) % 11),
    }));
    reqs.push({ id: "fixture", tokens: ref.greedy_prompt, adapter: adapters[4], maxTokens: 12 });
    // Half join at once, the rest while the first ones are decoding.
    for (const r of reqs.slice(0, 6)) sched.submit(r);
    await new Promise((ok) => setTimeout(ok, 5));
    for (const r of reqs.slice(6)) {
      sched.submit(r);
      await new Promise((ok) => setImmediate(ok));
    }
    while (results.size < reqs.length) await new Promise((ok) => setTimeout(ok, 2));
    const stats = sched.stats();
    await sched.close();

    expect(results.get("fixture")!.tokens).toEqual(ref.greedy_tokens);
    for (const r of reqs) {
      const got = results.get(r.id)!;
      expect(got.promptTokens, `${r.id}: ${got.text}`).toBe(r.tokens.length);
      expect(got.tokens, r.id).toEqual(await alone(r));
      expect(streamed.get(r.id), r.id).toEqual(got.tokens);
    }
    // Batches really mixed adapters and slots were reused: more loads than slots, fewer steps than tokens.
    expect(stats.adapterLoads).toBeGreaterThan(3);
    const totalTokens = reqs.reduce((s, r) => s + r.maxTokens, 0);
    expect(stats.steps).toBeLessThan(totalTokens / 2);
    // Prefill time is counted apart from, and inside, the time in session.run.
    expect(stats.prefills).toBeGreaterThan(0);
    expect(stats.prefillMs).toBeGreaterThan(0);
    expect(stats.prefillMs).toBeLessThan(stats.runMs);
  });

  it("gives rows that share one adapter (fed as one [1, …] view of its slot) the tokens they get alone", async () => {
    const { sched, outcome, settled } = startScheduler({ maxBatch: 4, maxContext: 48, policy: "per-adapter" });
    const prompts = ref.input_ids as number[][];
    const reqs: SeqRequest[] = Array.from({ length: 6 }, (_, i) => ({ id: `s${i}`, tokens: prompts[i % 2].slice(0, 2 + i), adapter: adapters[1], maxTokens: 4 + i }));
    for (const r of reqs) sched.submit(r);
    await settled(reqs.length);
    await sched.close();
    for (const r of reqs) expect(outcome.get(r.id), r.id).toBe(`ok:${(await alone(r)).join(",")}`);
  });

  it("prefills joiners with the same prompt and adapter once, each still getting the tokens it gets alone", async () => {
    const { sched, outcome, settled } = startScheduler({ maxBatch: 4, maxContext: 48, policy: "mixed" });
    const tokens = (ref.input_ids as number[][])[0].slice(0, 9);
    const reqs: SeqRequest[] = [
      ...[0, 1, 2].map((i) => ({ id: `same${i}`, tokens, adapter: adapters[2], maxTokens: 3 + i })),
      { id: "other-adapter", tokens, adapter: adapters[3], maxTokens: 4 },
    ];
    for (const r of reqs) sched.submit(r);
    await settled(reqs.length);
    const stats = sched.stats();
    await sched.close();
    for (const r of reqs) expect(outcome.get(r.id), r.id).toBe(`ok:${(await alone(r)).join(",")}`);
    expect(stats.prefills).toBe(1);
    expect(stats.prefillRows).toBe(2);
  });

  it("keeps every sequence's tokens under churn: joins and leaves every step, KV growth and shrinking, sampled rows", async () => {
    // maxContext 200 with a 64-slot start: long prompts and answers grow the rows' buffer to 128 and 200 and
    // short batches shrink it back; one to three requests arrive between steps, some ending at their prefill
    // (max_tokens 1) or on a stop token while others join, over 5 adapters in 3 slots and the base model.
    const { sched, outcome, settled } = startScheduler({ maxBatch: 5, maxContext: 200, policy: "mixed" });
    const rng = createRng(7);
    const int = (n: number) => Math.floor(rng.next() * n);
    const reqs: SeqRequest[] = Array.from({ length: 48 }, (_, i) => {
      const long = i % 7 === 3;
      const promptLen = long ? 90 + int(60) : 1 + int(24);
      const maxTokens = i % 9 === 4 ? 1 : long ? 40 : 1 + int(30);
      return {
        id: `c${i}`,
        tokens: Array.from({ length: promptLen }, () => 3 + int(250)),
        adapter: i % 6 === 5 ? null : adapters[int(adapters.length)],
        maxTokens: Math.min(maxTokens, 200 - promptLen),
        ...(i % 3 === 1 ? { temperature: 0.8, topK: i % 2 ? 0 : 40, seed: 1000 + i } : {}),
        ...(i % 5 === 2 ? { stopTokens: [int(256)] } : {}),
      };
    });
    const capacities = new Set<number>();
    const kv = (sched as unknown as { batch: { kv: { capacity: number } } }).batch.kv;
    for (let i = 0; i < reqs.length; ) {
      for (let k = 1 + int(3); k > 0 && i < reqs.length; k--) sched.submit(reqs[i++]);
      await new Promise((ok) => setImmediate(ok));
      capacities.add(kv.capacity);
    }
    while (outcome.size < reqs.length) {
      await new Promise((ok) => setImmediate(ok));
      capacities.add(kv.capacity);
    }
    await settled(reqs.length);
    await sched.close();
    for (const r of reqs) expect(outcome.get(r.id), r.id).toBe(`ok:${(await alone(r)).join(",")}`);
    // The buffer grew to the largest capacity and came back down between the long rows.
    expect([...capacities]).toEqual(expect.arrayContaining([64, 200]));
  });

  it("fails only the joiners of a prefill that throws, and frees their adapters' slots", async () => {
    // The model has 3 adapter slots: if the failed joiners kept theirs pinned, the next three
    // requests (other adapters) could never get one and would wait forever.
    let failures = 1;
    const flaky = new Proxy(model.session, {
      get(target, key) {
        if (key === "step") {
          return async (...args: Parameters<typeof target.step>) => {
            if (failures-- > 0) throw new Error("prefill failed on purpose");
            return target.step(...args);
          };
        }
        const v = Reflect.get(target, key);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const { sched, outcome, settled } = startScheduler({ maxBatch: 4, maxContext: 32, policy: "mixed" }, flaky);
    for (let i = 0; i < 3; i++) sched.submit({ id: `f${i}`, tokens: [1, 2, 3], adapter: adapters[i], maxTokens: 2 });
    await settled(3);
    for (let i = 0; i < 3; i++) sched.submit({ id: `g${i}`, tokens: [1, 2, 3], adapter: adapters[3 + (i % 2)], maxTokens: 2 });
    sched.submit({ id: "g3", tokens: [4, 5], adapter: adapters[0], maxTokens: 2 });
    await settled(7);
    await sched.close();
    for (let i = 0; i < 3; i++) expect(outcome.get(`f${i}`)).toBe("err:prefill failed on purpose");
    for (let i = 0; i < 4; i++) expect(outcome.get(`g${i}`)).toMatch(/^ok:\d+,\d+$/);
  });

  it("answers every other waiting request when one is cancelled while its adapter loads", async () => {
    // Admission awaits the adapter's files: a cancel then removes that request from the queue. Were the
    // admitted requests still found by their old queue positions, r2 would take r1's place and r1 never run.
    const { sched, outcome, settled } = startScheduler({ maxBatch: 2, maxContext: 32, policy: "mixed" });
    const internals = (sched as unknown as { adapters: { hostAdapter(a: { id: string; dir: string }): Promise<unknown> } }).adapters;
    const load = internals.hostAdapter.bind(internals);
    let loading!: () => void;
    const started = new Promise<void>((ok) => (loading = ok));
    let open!: () => void;
    const gate = new Promise<void>((ok) => (open = ok));
    internals.hostAdapter = async (a) => (loading(), await gate, load(a));
    sched.submit({ id: "r0", tokens: [1, 2], adapter: adapters[1], maxTokens: 2 });
    sched.submit({ id: "r1", tokens: [1, 2], adapter: null, maxTokens: 2 });
    sched.submit({ id: "r2", tokens: [3, 4], adapter: null, maxTokens: 2 });
    await started;
    sched.cancel("r0");
    open();
    await Promise.race([settled(2), new Promise((ok) => setTimeout(ok, 3000))]);
    await sched.close();
    expect(outcome.get("r1")).toMatch(/^ok:\d+,\d+$/);
    expect(outcome.get("r2")).toMatch(/^ok:\d+,\d+$/);
    // The cancelled request did not run, and its adapter's slot was not left pinned.
    expect(outcome.has("r0")).toBe(false);
    expect(sched.stats().running).toBe(0);
  });

  it("stops a request cancelled during its prefill", async () => {
    let prefilled!: () => void;
    const started = new Promise<void>((ok) => (prefilled = ok));
    let open!: () => void;
    const gate = new Promise<void>((ok) => (open = ok));
    const held = new Proxy(model.session, {
      get(target, key) {
        if (key === "step") return async (...args: Parameters<typeof target.step>) => (prefilled(), await gate, target.step(...args));
        const v = Reflect.get(target, key);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const { sched, outcome, settled } = startScheduler({ maxBatch: 2, maxContext: 32, policy: "mixed" }, held);
    sched.submit({ id: "c", tokens: [1, 2], adapter: null, maxTokens: 20 });
    await started;
    sched.cancel("c");
    open();
    await settled(1);
    await sched.close();
    // Neither waiting nor running while it prefilled: without the cancel noted, it would decode all 20 tokens.
    expect(outcome.get("c")).toBe("ok:");
  });

  it("forgets deleted adapters: their parsed copies and slots go, and a later request loads them again", async () => {
    const { sched, outcome, settled } = startScheduler({ maxBatch: 2, maxContext: 48, policy: "mixed" });
    const prompt = (ref.input_ids as number[][])[0].slice(0, 3);
    const req = (id: string, a: number): SeqRequest => ({ id, tokens: prompt, adapter: adapters[a], maxTokens: 2 });
    sched.submit(req("f0", 0));
    sched.submit(req("f1", 1));
    await settled(2);
    expect(sched.heldAdapters().sort()).toEqual(["ad-0", "ad-1"]);
    sched.forget(["ad-0"]);
    expect(sched.heldAdapters()).toEqual(["ad-1"]);
    const loads = sched.stats().adapterLoads;
    sched.submit(req("f2", 0));
    await settled(3);
    await sched.close();
    expect(sched.stats().adapterLoads).toBe(loads + 1);
    expect(outcome.get("f2")).toBe(outcome.get("f0"));
  });

  it("forgets a deleted adapter that a running row uses once that row ends", async () => {
    const { sched, outcome, settled } = startScheduler({ maxBatch: 2, maxContext: 48, policy: "mixed" });
    sched.submit({ id: "long", tokens: (ref.input_ids as number[][])[0].slice(0, 3), adapter: adapters[0], maxTokens: 40 });
    while (!sched.heldAdapters().includes("ad-0")) await new Promise((ok) => setTimeout(ok, 1));
    sched.forget(["ad-0"]);
    expect(outcome.has("long")).toBe(false);
    expect(sched.heldAdapters()).toContain("ad-0"); // still in use
    await settled(1);
    expect(outcome.get("long")).toMatch(/^ok:/);
    expect(sched.heldAdapters()).not.toContain("ad-0");
    await sched.close();
  });

  it("rejects requests that can never fit, naming the field", async () => {
    const sched = new Scheduler(model.session, model.slots, { maxBatch: 2, maxContext: 16, policy: "mixed", tokenizer: null, events: { onToken() {}, onDone() {}, onError() {} } });
    expect(() => sched.submit({ id: "x", tokens: [1, 2, 3], adapter: null, maxTokens: 14 })).toThrow(/max_tokens.*context of 16/);
    expect(() => sched.submit({ id: "y", tokens: [999], adapter: null, maxTokens: 1 })).toThrow(/token 999 is outside the vocabulary/);
    expect(() => sched.submit({ id: "z", tokens: [1], adapter: null, maxTokens: 1, temperature: -1 })).toThrow(/temperature/);
    await sched.close();
  });

  it("fails a request whose adapter does not fit the model, and keeps serving", async () => {
    const { sched, outcome, settled } = startScheduler({ maxBatch: 2, maxContext: 32, policy: "mixed" });
    sched.submit({ id: "bad", tokens: [1, 2], adapter: { id: "missing", dir: join(dir, "nope") }, maxTokens: 2 });
    sched.submit({ id: "good", tokens: [1, 2], adapter: adapters[0], maxTokens: 2 });
    await settled(2);
    await sched.close();
    expect(outcome.get("bad")).toMatch(/^err:adapter missing: .*adapter_config.json/);
    expect(outcome.get("good")).toMatch(/^ok:\d+,\d+$/);
  });
});
