// Continuous batching inside the engine worker: requests join the running batch at step boundaries
// (their prompts prefill together in a small cache whose keys then move into free rows of the batch's
// RowKv) and leave when they finish. One decode step serves every row, each with its own LoRA slot, so a
// batch mixes adapters (the Punica / S-LoRA idea) instead of running one batch per adapter.
import type { ModelConfig } from "../engine/model/config.js";
import { presentNames } from "../engine/model/names.js";
import type { DecoderSession } from "../engine/runtime/decoder-session.js";
import { loadLoraAdapter, type LoraAdapter } from "../engine/lora/peft.js";
import type { LoraSlots } from "../engine/lora/slots.js";
import { padLeft } from "../engine/generate/batch.js";
import { validateLogprobs, type TokenLogprob } from "../engine/generate/logprobs.js";
import { validateSamplingOptions } from "../engine/generate/sampling.js";
import { mergeFeeds, ort } from "../engine/runtime/session.js";
import { inTurns, planAdmission, type BatchingPolicy } from "./batch.js";
import { LruTier, SlotTable } from "./cache.js";
import { RowKv } from "./kv-rows.js";
import { RowLora } from "./row-lora.js";
import { Sequence, autoToolCalls, jsonRecognizer, jsonVocabulary, type SequenceTokenizer } from "../engine/generate/sequence.js";
import type { SeqRequest, SeqResult } from "./sequence.js";
import type { FloatArray } from "../engine/graph/types.js";


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

/** Step counters, for status pages and the benchmark. */
export type SchedulerStats = {
  waiting: number;
  running: number;
  /** Decode steps, and the rows they decoded in all (rowSteps / steps = mean batch size). */
  steps: number;
  rowSteps: number;
  prefills: number;
  /** Rows those prefills ran: joiners with the same prompt and adapter share one. */
  prefillRows: number;
  adapterLoads: number;
  /** Milliseconds inside session.run (decode and prefill), and the prefills' part of them. */
  runMs: number;
  prefillMs: number;
  adaptersHeld: string[];
};

export class Scheduler {
  private readonly waiting: SeqRequest[] = [];
  /** Each tenant's last admission (a counter), for taking turns (batch.ts inTurns). */
  private readonly served = new Map<string, number>();
  private turns = 0;
  private rows: Sequence<SeqRequest>[] = [];
  private readonly kv: RowKv;
  private readonly slotTable: SlotTable | null;
  private readonly host: LruTier<string, LoraAdapter>;
  private wake: (() => void) | null = null;
  private closed = false;
  private readonly rowLora: RowLora | null;
  /** Rows whose sampling failed, with why: they leave the batch at the next removeFinished. */
  private readonly failed = new Map<Sequence<SeqRequest>, string>();
  /** Requests of the prefill in progress (neither waiting nor running), true once cancelled: they join finished. */
  private readonly prefilling = new Map<string, boolean>();
  private readonly counters = { steps: 0, rowSteps: 0, prefills: 0, prefillRows: 0, adapterLoads: 0, runMs: 0, prefillMs: 0 };
  readonly done: Promise<void>;

  constructor(
    private readonly session: DecoderSession,
    private readonly slots: LoraSlots | null,
    private readonly o: SchedulerOptions,
  ) {
    // A row holds at most prompt + max_tokens ≤ maxContext tokens.
    this.kv = new RowKv(session.cfg, o.maxBatch, o.maxContext, session.dtype);
    this.slotTable = slots ? new SlotTable(slots.spec.slots) : null;
    this.rowLora = slots ? new RowLora(slots, o.maxBatch) : null;
    this.host = new LruTier("host adapter", o.hostAdapters ?? 64);
    this.done = this.loop();
  }

  get cfg(): ModelConfig {
    return this.session.cfg;
  }

  /** Checks a request and queues it; throws (naming the field) when it can never run. */
  submit(req: SeqRequest): void {
    if (this.closed) throw new Error("scheduler: closed");
    const V = this.cfg.vocab;
    validateSamplingOptions({ temperature: req.temperature ?? 0, topK: req.topK, topP: req.topP });
    validateLogprobs(req.logprobs);
    if (req.tokens.length === 0) throw new Error("prompt: it encodes to no tokens; send a non-empty prompt");
    for (const t of req.tokens) if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`prompt: token ${t} is outside the vocabulary 0..${V - 1}`);
    for (const t of Object.keys(req.logitBias ?? {})) {
      if (!/^(0|[1-9]\d*)$/.test(t) || Number(t) >= V) throw new Error(`logit_bias: token ${t} is outside the vocabulary 0..${V - 1}`);
    }
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new Error(`max_tokens=${req.maxTokens} must be an integer ≥ 1`);
    if (req.tokens.length >= this.o.maxContext) {
      throw new Error(`prompt: it is ${req.tokens.length} tokens, and this server's context of ${this.o.maxContext} must also hold the answer; shorten it`);
    }
    if (req.fitMaxTokens) req.maxTokens = Math.min(req.maxTokens, this.o.maxContext - req.tokens.length);
    if (req.tokens.length + req.maxTokens > this.o.maxContext) {
      throw new Error(`max_tokens: prompt (${req.tokens.length} tokens) + max_tokens (${req.maxTokens}) exceeds this server's context of ${this.o.maxContext}; shorten one`);
    }
    if (req.adapter && !this.slots) throw new Error("model: this server was started without LoRA slots; it serves base models only");
    if (req.stop?.length && !this.o.tokenizer) throw new Error("stop: stop strings need a tokenizer (tokenizer.json in the model folder)");
    if (req.json || req.jsonSchema) {
      // Throw now, naming the field, without a tokenizer that spells tokens or for a schema it cannot enforce.
      jsonVocabulary(this.o.tokenizer, new Set());
      jsonRecognizer(req);
    }
    if (req.toolCalls) autoToolCalls(this.o.tokenizer, new Set(), req.toolCalls);
    this.waiting.push(req);
    this.wake?.();
  }

  /** Drops a request (the client went away): removed if waiting, finished at the next step if running. */
  cancel(id: string): void {
    const i = this.waiting.findIndex((r) => r.id === id);
    if (i >= 0) this.waiting.splice(i, 1);
    const row = this.rows.find((r) => r.req.id === id);
    if (row) row.done = true;
    if (this.prefilling.has(id)) this.prefilling.set(id, true);
  }

  /** Drops deleted adapters from host memory and from the slots no running row uses. */
  forget(adapters: string[]): void {
    for (const id of adapters) {
      if (this.host.has(id) && this.host.pins(id) === 0) this.host.delete(id);
      this.slotTable?.forget(id);
    }
  }

  stats(): SchedulerStats {
    return { waiting: this.waiting.length, running: this.rows.length, ...this.counters, adaptersHeld: this.heldAdapters() };
  }

  /** Adapters in the session's slots or in host memory. */
  heldAdapters(): string[] {
    return [...new Set([...(this.slotTable?.held() ?? []), ...this.host.keys()])];
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.done;
  }

  /** Stops after the step in progress, then fails every request left (running or waiting) with `message`. */
  async shutdown(message: string): Promise<void> {
    await this.close();
    for (const row of this.rows) this.finishRow(row, message);
    this.rows = [];
    this.failed.clear();
    this.kv.clear();
    for (const req of this.waiting.splice(0)) this.o.events.onError(req.id, message);
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      if (this.rows.length === 0 && this.waiting.length === 0) {
        await new Promise<void>((ok) => (this.wake = ok));
        this.wake = null;
        continue;
      }
      try {
        await this.admit();
        if (this.rows.length > 0) await this.decodeStep();
      } catch (err) {
        // A failed step fails the requests in it; the loop keeps serving the others.
        const msg = err instanceof Error ? err.message : String(err);
        for (const row of this.rows) this.finishRow(row, msg);
        this.rows = [];
        this.failed.clear();
        this.prefilling.clear();
        this.kv.clear();
      }
      // session.run blocks this thread: let queued messages (new requests, cancels) in between steps.
      await new Promise((ok) => setImmediate(ok));
    }
  }

  /** Moves admissible waiting requests into the batch: slots for their adapters, then one joint prefill. */
  private async admit(): Promise<void> {
    // Every step comes here: with no one waiting or no free row, there is nothing to decide.
    if (this.waiting.length === 0 || this.rows.length >= this.o.maxBatch) return;
    const table = this.slotTable;
    // Turns are kept for tenants with requests here only: one that comes back after a pause goes first.
    const present = new Set([...this.waiting, ...this.rows.map((r) => r.req)].map((r) => r.tenant ?? ""));
    for (const t of this.served.keys()) if (!present.has(t)) this.served.delete(t);
    const order = inTurns(this.waiting.map((r) => r.tenant), this.served);
    const picked = planAdmission({
      waiting: order.map((i) => this.waiting[i].adapter?.id ?? null),
      running: this.rows.map((r) => r.req.adapter?.id ?? null),
      maxBatch: this.o.maxBatch,
      slots: { resident: (a) => table?.resident(a) ?? a === null, free: table?.freeCount ?? 0, evictable: new Set(table?.evictable() ?? []) },
      policy: this.o.policy,
    }).map((k) => order[k]);
    if (picked.length === 0) return;
    const joining: { req: SeqRequest; slot: number }[] = [];
    // By request, not queue position: a cancel while an adapter loads (an await) splices the queue.
    const taken = new Set<SeqRequest>();
    for (const req of picked.map((i) => this.waiting[i])) {
      let slot = 0;
      if (req.adapter && table && this.slots) {
        const got = table.acquire(req.adapter.id);
        if (!got) continue; // every slot is pinned: wait for a row to finish
        slot = got.slot;
        if (got.load) {
          let filesRead = false;
          try {
            const parsed = await this.hostAdapter(req.adapter);
            filesRead = true;
            this.slots.load(slot, parsed);
          } catch (err) {
            table.release(req.adapter.id);
            table.forget(req.adapter.id);
            taken.add(req);
            this.o.events.onError(req.id, `adapter ${req.adapter.id}: ${err instanceof Error ? err.message : String(err)}`, filesRead ? undefined : req.adapter.id);
            continue;
          }
          this.counters.adapterLoads++;
          // Cancelled while its adapter loaded: it left the queue; the adapter stays resident, unpinned.
          if (!this.waiting.includes(req)) {
            table.release(req.adapter.id);
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

  private async hostAdapter(a: { id: string; dir: string }): Promise<LoraAdapter> {
    const cached = this.host.get(a.id);
    if (cached) return cached;
    const parsed = await loadLoraAdapter(a.dir, this.cfg, a.id);
    this.host.set(a.id, parsed);
    return parsed;
  }

  private async prefill(joining: { req: SeqRequest; slot: number }[]): Promise<void> {
    // Joiners with the same prompt and adapter (the choices of one request, n > 1) share one prefill row.
    const unique: { req: SeqRequest; slot: number }[] = [];
    const prefillRow: number[] = [];
    const rowOfPrompt = new Map<string, number>();
    for (const j of joining) {
      const key = `${j.slot}:${j.req.tokens.join(",")}`;
      let row = rowOfPrompt.get(key);
      if (row === undefined) rowOfPrompt.set(key, (row = unique.push(j) - 1));
      prefillRow.push(row);
    }
    const batch = padLeft(unique.map((j) => j.req.tokens));
    const cache = this.session.newCache(batch.B, batch.T);
    // The prefill's rows get their adapters now; the prefill reads them as views of those rows.
    const first = this.rows.length;
    unique.forEach((j, b) => this.rowLora?.setRow(first + b, j.slot));
    const lora = this.rowLora?.feeds(unique.length, first) ?? {};
    const t0 = performance.now();
    let logits: FloatArray;
    // session.run waits a setImmediate: a cancel may come in meanwhile.
    for (const j of joining) this.prefilling.set(j.req.id, false);
    try {
      logits = await this.session.step(cache, { ids: batch.ids, positions: batch.positions, mask: batch.mask, T: batch.T }, lora);
    } catch (err) {
      this.prefilling.clear();
      // The joiners fail (and unpin their adapters' slots); the running rows are untouched and go on.
      const msg = err instanceof Error ? err.message : String(err);
      for (const j of joining) {
        if (j.req.adapter && this.slotTable) this.slotTable.release(j.req.adapter.id);
        this.o.events.onError(j.req.id, msg);
      }
      return;
    }
    const ms = performance.now() - t0;
    this.counters.runMs += ms;
    this.counters.prefillMs += ms;
    this.counters.prefills++;
    this.counters.prefillRows += unique.length;
    const V = this.cfg.vocab;
    joining.forEach((j, b) => {
      const row = new Sequence(j.req, this.o.tokenizer, { streamText: j.req.stream === true });
      const at = this.rows.length;
      const p = prefillRow[b];
      // Row `at` holds j's adapter only if the prefill ran j there.
      if (unique[b] !== j) this.rowLora?.setRow(at, j.slot);
      this.kv.adoptPrefill(at, cache, p);
      this.rows.push(row);
      if (this.prefilling.get(j.req.id)) row.done = true;
      else this.accept(row, logits.subarray(p * V, (p + 1) * V));
    });
    this.prefilling.clear();
    this.removeFinished();
  }

  private async decodeStep(): Promise<void> {
    const n = this.rows.length;
    this.kv.reserve(n, 1);
    const ids = new BigInt64Array(n);
    const positions = new BigInt64Array(n);
    const mask = new Uint8Array(n).fill(1);
    this.rows.forEach((row, b) => {
      ids[b] = BigInt(row.out[row.out.length - 1]);
      positions[b] = BigInt(row.req.tokens.length + row.out.length - 1);
    });
    const feeds = mergeFeeds(this.kv.feeds(n, mask, 1), this.rowLora?.feeds(n) ?? {}, {
      input_ids: new ort.Tensor("int64", ids, [n, 1]),
      position_ids: new ort.Tensor("int64", positions, [n, 1]),
    });
    const t0 = performance.now();
    const out = await this.session.session.run(feeds);
    this.counters.runMs += performance.now() - t0;
    this.counters.rowSteps += n;
    const keys: FloatArray[] = [];
    const values: FloatArray[] = [];
    for (let i = 0; i < this.cfg.layers; i++) {
      keys.push(out[presentNames(i).key].data as FloatArray);
      values.push(out[presentNames(i).value].data as FloatArray);
    }
    this.kv.appendStep(n, keys, values, mask);
    this.counters.steps++;
    const logits = out.logits.data as FloatArray;
    const V = this.cfg.vocab;
    this.rows.forEach((row, b) => {
      if (!row.done) this.accept(row, logits.subarray(b * V, (b + 1) * V));
    });
    this.removeFinished();
  }

  /** Takes finished rows out, moving the last row into each hole so the running rows stay packed. */
  private removeFinished(): void {
    for (let i = this.rows.length - 1; i >= 0; i--) {
      const row = this.rows[i];
      if (!row.done) continue;
      const last = this.rows.length - 1;
      if (i !== last) {
        this.kv.moveRow(last, i);
        this.rowLora?.moveRow(last, i);
        this.rows[i] = this.rows[last];
      }
      this.rows.pop();
      this.kv.clearRow(last);
      this.finishRow(row, this.failed.get(row) ?? null);
      this.failed.delete(row);
    }
  }

  private finishRow(row: Sequence<SeqRequest>, error: string | null): void {
    if (row.req.adapter && this.slotTable) this.slotTable.release(row.req.adapter.id);
    if (error !== null) {
      this.o.events.onError(row.req.id, error);
      return;
    }
    const { tail, result } = row.finish();
    if (tail) this.o.events.onToken(row.req.id, null, tail);
    this.o.events.onDone(row.req.id, result);
  }

  /** Samples a row's next token and reports it; a row whose sampling fails (JSON mode found no token) fails alone. */
  private accept(row: Sequence<SeqRequest>, logits: FloatArray): void {
    try {
      const got = row.accept(logits);
      if (got) this.o.events.onToken(row.req.id, got.token, got.text, got.logprob);
    } catch (err) {
      row.done = true;
      this.failed.set(row, err instanceof Error ? err.message : String(err));
    }
  }
}
