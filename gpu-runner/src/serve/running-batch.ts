// The batch's running rows, packed at the front of their KV and LoRA rows (a finished row's hole takes the
// last row), so that one decode step feeds zero-copy views of the first n rows.
import type { DecoderSession } from "../engine/runtime/decoder-session.js";
import type { LoraSlots } from "../engine/lora/slots.js";
import { presentNames } from "../engine/model/names.js";
import { mergeFeeds, ort } from "../engine/runtime/session.js";
import type { Sequence } from "../engine/generate/sequence.js";
import type { FloatArray } from "../engine/graph/types.js";
import { RowKv } from "./kv-rows.js";
import { RowLora } from "./row-lora.js";
import type { SchedulerEvents } from "./scheduler.js";
import type { SeqRequest } from "./sequence.js";

/** Step counters, for status pages and the benchmark. */
export type StepCounters = {
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
};

export class RunningBatch {
  rows: Sequence<SeqRequest>[] = [];
  readonly kv: RowKv;
  readonly rowLora: RowLora | null;
  readonly counters: StepCounters = { steps: 0, rowSteps: 0, prefills: 0, prefillRows: 0, adapterLoads: 0, runMs: 0, prefillMs: 0 };
  /** Rows whose sampling failed, with why: they leave the batch at the next removeFinished. */
  private readonly failed = new Map<Sequence<SeqRequest>, string>();

  constructor(
    private readonly session: DecoderSession,
    slots: LoraSlots | null,
    maxBatch: number,
    maxContext: number,
    private readonly events: SchedulerEvents,
    /** Unpins a finished row's adapter slot. */
    private readonly release: (adapter: string) => void,
  ) {
    // A row holds at most prompt + max_tokens ≤ maxContext tokens.
    this.kv = new RowKv(session.cfg, maxBatch, maxContext, session.dtype);
    this.rowLora = slots ? new RowLora(slots, maxBatch) : null;
  }

  /** One decode step for every running row: its last token in, its next token sampled and reported. */
  async decodeStep(): Promise<void> {
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
    for (let i = 0; i < this.session.cfg.layers; i++) {
      keys.push(out[presentNames(i).key].data as FloatArray);
      values.push(out[presentNames(i).value].data as FloatArray);
    }
    this.kv.appendStep(n, keys, values, mask);
    this.counters.steps++;
    const logits = out.logits.data as FloatArray;
    const V = this.session.cfg.vocab;
    this.rows.forEach((row, b) => {
      if (!row.done) this.accept(row, logits.subarray(b * V, (b + 1) * V));
    });
    this.removeFinished();
  }

  /** Samples a row's next token and reports it; a row whose sampling fails (JSON mode found no token) fails alone. */
  accept(row: Sequence<SeqRequest>, logits: FloatArray): void {
    try {
      const got = row.accept(logits);
      if (got) this.events.onToken(row.req.id, got.token, got.text, got.logprob);
    } catch (err) {
      row.done = true;
      this.failed.set(row, err instanceof Error ? err.message : String(err));
    }
  }

  /** Takes finished rows out, moving the last row into each hole so the running rows stay packed. */
  removeFinished(): void {
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

  /** Fails every running row with `message` and empties the batch. */
  failAll(message: string): void {
    for (const row of this.rows) this.finishRow(row, message);
    this.rows = [];
    this.failed.clear();
    this.kv.clear();
  }

  private finishRow(row: Sequence<SeqRequest>, error: string | null): void {
    if (row.req.adapter) this.release(row.req.adapter.id);
    if (error !== null) {
      this.events.onError(row.req.id, error);
      return;
    }
    const { tail, result } = row.finish();
    if (tail) this.events.onToken(row.req.id, null, tail);
    this.events.onDone(row.req.id, result);
  }
}
