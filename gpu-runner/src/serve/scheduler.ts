// Continuous batching inside the engine worker: requests join the running batch at step boundaries
// (their prompts prefill together in a small cache whose keys then move into free rows of the batch's
// RowKv) and leave when they finish. One decode step serves every row (running-batch.ts), each with its own
// LoRA slot, so a batch mixes adapters (the Punica / S-LoRA idea) instead of running one batch per adapter.
import type { ModelConfig } from "../engine/model/config.js";
import type { DecoderSession } from "../engine/runtime/decoder-session.js";
import type { LoraSlots } from "../engine/lora/slots.js";
import { padLeft } from "../engine/generate/batch.js";
import type { TokenLogprob } from "../engine/generate/logprobs.js";
import { Sequence, type SequenceTokenizer } from "../engine/generate/sequence.js";
import type { FloatArray } from "../engine/graph/types.js";
import { AdapterResidency } from "./adapter-residency.js";
import { inTurns, planAdmission, sharedPrefillRows, type BatchingPolicy } from "./batch.js";
import { checkRequest } from "./request-checks.js";
import { RunningBatch, type StepCounters } from "./running-batch.js";
import type { SeqRequest, SeqResult } from "./sequence.js";

export type { FinishReason, SeqRequest, SeqResult } from "./sequence.js";

export type SchedulerEvents = {
  /** A sampled token, the text it released and its logprobs if asked for; token null for text released at the end (held-back tail). */
  onToken(id: string, token: number | null, text: string, logprob?: TokenLogprob): void;
  onDone(id: string, result: SeqResult): void;
  /** `badAdapter`: the request's adapter, whose files the engine could not load (the runner drops its copy of them). */
  onError(id: string, message: string, badAdapter?: string): void;
};

export type SchedulerOptions = {
  maxBatch: number;
  /** Longest prompt + max_tokens a request may ask for. */
  maxContext: number;
  policy: BatchingPolicy;
  /** Parsed adapters kept in host memory (the tier between the slots and the disk). */
  hostAdapters?: number;
  tokenizer: SequenceTokenizer | null;
  events: SchedulerEvents;
};

/** Queue and batch sizes with the step counters, for status pages and the benchmark. */
export type SchedulerStats = { waiting: number; running: number } & StepCounters & { adaptersHeld: string[] };

/** A request admitted to the batch and the LoRA slot (0: none) its row reads. */
type Joiner = { req: SeqRequest; slot: number };

export class Scheduler {
  private readonly waiting: SeqRequest[] = [];
  /** Each tenant's last admission (a counter), for taking turns (batch.ts inTurns). */
  private readonly served = new Map<string, number>();
  private turns = 0;
  private readonly batch: RunningBatch;
  /** Null without LoRA slots (a base-model server). */
  private readonly adapters: AdapterResidency | null;
  private wake: (() => void) | null = null;
  private closed = false;
  /** Requests of the prefill in progress (neither waiting nor running), true once cancelled: they join finished. */
  private readonly prefilling = new Map<string, boolean>();
  readonly done: Promise<void>;

  constructor(
    private readonly session: DecoderSession,
    private readonly slots: LoraSlots | null,
    private readonly o: SchedulerOptions,
  ) {
    this.batch = new RunningBatch(session, slots, o.maxBatch, o.maxContext, o.events, (a) => this.adapters?.release(a));
    this.adapters = slots ? new AdapterResidency(slots, session.cfg, o.hostAdapters ?? 64) : null;
    this.done = this.loop();
  }

  get cfg(): ModelConfig {
    return this.session.cfg;
  }

  /** Checks a request and queues it; throws (naming the field) when it can never run. */
  submit(req: SeqRequest): void {
    if (this.closed) throw new Error("scheduler: closed");
    checkRequest(req, { vocab: this.cfg.vocab, maxContext: this.o.maxContext, lora: this.slots !== null, tokenizer: this.o.tokenizer });
    this.waiting.push(req);
    this.wake?.();
  }

  /** Drops a request (the client went away): removed if waiting, finished at the next step if running. */
  cancel(id: string): void {
    const i = this.waiting.findIndex((r) => r.id === id);
    if (i >= 0) this.waiting.splice(i, 1);
    const row = this.batch.rows.find((r) => r.req.id === id);
    if (row) row.done = true;
    if (this.prefilling.has(id)) this.prefilling.set(id, true);
  }

  /** Drops deleted adapters from host memory and from the slots no running row uses. */
  forget(adapters: string[]): void {
    this.adapters?.forget(adapters);
  }

  stats(): SchedulerStats {
    return { waiting: this.waiting.length, running: this.batch.rows.length, ...this.batch.counters, adaptersHeld: this.heldAdapters() };
  }

  /** Adapters in the session's slots or in host memory. */
  heldAdapters(): string[] {
    return this.adapters?.held() ?? [];
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.done;
  }

  /** Stops after the step in progress, then fails every request left (running or waiting) with `message`. */
  async shutdown(message: string): Promise<void> {
    await this.close();
    this.batch.failAll(message);
    for (const req of this.waiting.splice(0)) this.o.events.onError(req.id, message);
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      if (this.batch.rows.length === 0 && this.waiting.length === 0) {
        await new Promise<void>((ok) => (this.wake = ok));
        this.wake = null;
        continue;
      }
      try {
        await this.admit();
        if (this.batch.rows.length > 0) await this.batch.decodeStep();
      } catch (err) {
        // A failed step fails the requests in it; the loop keeps serving the others.
        const msg = err instanceof Error ? err.message : String(err);
        this.batch.failAll(msg);
        this.prefilling.clear();
      }
      // session.run blocks this thread: let queued messages (new requests, cancels) in between steps.
      await new Promise((ok) => setImmediate(ok));
    }
  }

  /** Moves admissible waiting requests into the batch: slots for their adapters, then one joint prefill. */
  private async admit(): Promise<void> {
    // Every step comes here: with no one waiting or no free row, there is nothing to decide.
    if (this.waiting.length === 0 || this.batch.rows.length >= this.o.maxBatch) return;
    const table = this.adapters?.table;
    const running = this.batch.rows.map((r) => r.req);
    // Turns are kept for tenants with requests here only: one that comes back after a pause goes first.
    const present = new Set([...this.waiting, ...running].map((r) => r.tenant ?? ""));
    for (const t of this.served.keys()) if (!present.has(t)) this.served.delete(t);
    const order = inTurns(this.waiting.map((r) => r.tenant), this.served);
    const picked = planAdmission({
      waiting: order.map((i) => this.waiting[i].adapter?.id ?? null),
      running: running.map((r) => r.adapter?.id ?? null),
      maxBatch: this.o.maxBatch,
      slots: { resident: (a) => table?.resident(a) ?? a === null, free: table?.freeCount ?? 0, evictable: new Set(table?.evictable() ?? []) },
      policy: this.o.policy,
    }).map((k) => order[k]);
    if (picked.length === 0) return;
    const joining: Joiner[] = [];
    // By request, not queue position: a cancel while an adapter loads (an await) splices the queue.
    const taken = new Set<SeqRequest>();
    for (const req of picked.map((i) => this.waiting[i])) {
      let slot = 0;
      if (req.adapter && this.adapters) {
        const got = await this.adapters.pin(req.adapter);
        if (!got) continue; // every slot is pinned: wait for a row to finish
        if ("error" in got) {
          taken.add(req);
          this.o.events.onError(req.id, `adapter ${req.adapter.id}: ${got.error}`, got.badAdapter);
          continue;
        }
        slot = got.slot;
        if (got.loaded) {
          this.batch.counters.adapterLoads++;
          // Cancelled while its adapter loaded: it left the queue; the adapter stays resident, unpinned.
          if (!this.waiting.includes(req)) {
            this.adapters.release(req.adapter.id);
            continue;
          }
        }
      }
      taken.add(req);
      joining.push({ req, slot });
      this.served.set(req.tenant ?? "", ++this.turns);
    }
    const remaining = this.waiting.filter((r) => !taken.has(r));
    this.waiting.length = 0;
    this.waiting.push(...remaining);
    if (joining.length > 0) await this.prefill(joining);
  }

  private async prefill(joining: Joiner[]): Promise<void> {
    const { unique, prefillRow } = sharedPrefillRows(joining);
    const padded = padLeft(unique.map((j) => j.req.tokens));
    const cache = this.session.newCache(padded.B, padded.T);
    // The prefill's rows get their adapters now; the prefill reads them as views of those rows.
    const { kv, rowLora, counters } = this.batch;
    const first = this.batch.rows.length;
    unique.forEach((j, b) => rowLora?.setRow(first + b, j.slot));
    const lora = rowLora?.feeds(unique.length, first) ?? {};
    const t0 = performance.now();
    let logits: FloatArray;
    // session.run waits a setImmediate: a cancel may come in meanwhile.
    for (const j of joining) this.prefilling.set(j.req.id, false);
    try {
      logits = await this.session.step(cache, { ids: padded.ids, positions: padded.positions, mask: padded.mask, T: padded.T }, lora);
    } catch (err) {
      this.prefilling.clear();
      // The joiners fail (and unpin their adapters' slots); the running rows are untouched and go on.
      const msg = err instanceof Error ? err.message : String(err);
      for (const j of joining) {
        if (j.req.adapter) this.adapters?.release(j.req.adapter.id);
        this.o.events.onError(j.req.id, msg);
      }
      return;
    }
    const ms = performance.now() - t0;
    counters.runMs += ms;
    counters.prefillMs += ms;
    counters.prefills++;
    counters.prefillRows += unique.length;
    const V = this.cfg.vocab;
    joining.forEach((j, b) => {
      const row = new Sequence(j.req, this.o.tokenizer, { streamText: j.req.stream === true });
      const at = this.batch.rows.length;
      const p = prefillRow[b];
      // Row `at` holds j's adapter only if the prefill ran j there.
      if (unique[b] !== j) rowLora?.setRow(at, j.slot);
      kv.adoptPrefill(at, cache, p);
      this.batch.rows.push(row);
      if (this.prefilling.get(j.req.id)) row.done = true;
      else this.batch.accept(row, logits.subarray(p * V, (p + 1) * V));
    });
    this.prefilling.clear();
    this.batch.removeFinished();
  }
}
