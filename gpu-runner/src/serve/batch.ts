// Pure batching decisions of the continuous-batching scheduler: which waiting requests join the running
// batch at the next step boundary, given free rows and adapter slots, and which joiners share a prefill
// row. "mixed" lets one batch hold many adapters (per-row LoRA inputs); "per-adapter" is the baseline that
// runs one adapter per batch.
import { z } from "zod";

export const batchingPolicies = ["mixed", "per-adapter"] as const;
export const batchingPolicySchema = z.enum(batchingPolicies);
export type BatchingPolicy = z.infer<typeof batchingPolicySchema>;

/** What the planner needs to know about the adapter slots (the slot tier of cache.ts answers it). */
export type SlotView = {
  /** True when the adapter (null = base model, always resident) already sits in a slot. */
  resident(adapter: string | null): boolean;
  /** Slots that are empty now. */
  free: number;
  /** Resident adapters no running row uses (they may be evicted to make room). */
  evictable: ReadonlySet<string>;
};

export type AdmissionInput = {
  /** Adapter of each waiting request, oldest first. */
  waiting: readonly (string | null)[];
  /** Adapters of the rows already running. */
  running: readonly (string | null)[];
  maxBatch: number;
  slots: SlotView;
  policy: BatchingPolicy;
};

/**
 * Indices into `waiting` (ascending) that may join now. Requests keep their order; one whose adapter
 * cannot get a slot this step is skipped, not allowed to block the requests behind it.
 */
export function planAdmission(inp: AdmissionInput): number[] {
  const room = inp.maxBatch - inp.running.length;
  if (room <= 0 || inp.waiting.length === 0) return [];
  let batchAdapter: string | null | undefined;
  if (inp.policy === "per-adapter") {
    // The baseline: the running batch's adapter, or (when idle) the oldest request's.
    batchAdapter = inp.running.length > 0 ? inp.running[0] : inp.waiting[0];
  }
  const claimed = new Set<string>(); // non-resident adapters given a slot in this plan
  const usedNow = new Set<string>(); // resident adapters this plan relies on (no longer evictable)
  for (const a of inp.running) if (a !== null) usedNow.add(a);
  let free = inp.slots.free;
  const evictable = [...inp.slots.evictable];
  const out: number[] = [];
  for (let i = 0; i < inp.waiting.length && out.length < room; i++) {
    const a = inp.waiting[i];
    if (batchAdapter !== undefined && a !== batchAdapter) continue;
    if (a === null || claimed.has(a) || inp.slots.resident(a)) {
      if (a !== null && !claimed.has(a)) usedNow.add(a);
      out.push(i);
      continue;
    }
    // Needs a slot: an empty one, else evict a resident adapter nobody in the batch needs.
    if (free > 0) {
      free--;
    } else {
      const victim = evictable.findIndex((v) => !usedNow.has(v));
      if (victim < 0) continue;
      evictable.splice(victim, 1);
    }
    claimed.add(a);
    out.push(i);
  }
  return out;
}

/**
 * The order in which waiting requests are offered a row: tenants take turns, the one served longest ago (or
 * never) first, ties by the oldest waiting request; each tenant's requests first come first served. A
 * tenant's burst then does not make another tenant's request wait behind all of it. `served` holds each
 * tenant's last admission (a counter); requests without a tenant count as one tenant, "".
 */
export function inTurns(tenants: readonly (string | undefined)[], served: ReadonlyMap<string, number> = new Map()): number[] {
  const queues = new Map<string, number[]>();
  tenants.forEach((t, i) => {
    const q = queues.get(t ?? "");
    if (q) q.push(i);
    else queues.set(t ?? "", [i]);
  });
  const turns = [...queues.entries()].sort(([a], [b]) => (served.get(a) ?? -1) - (served.get(b) ?? -1)).map(([, q]) => q);
  const out: number[] = [];
  for (let turn = 0; out.length < tenants.length; turn++) for (const q of turns) if (turn < q.length) out.push(q[turn]);
  return out;
}

/**
 * Joiners with the same prompt and adapter slot (the choices of one request, n > 1) share one prefill row:
 * the joiners that get a row of their own, and for each joiner the prefill row it reads.
 */
export function sharedPrefillRows<J extends { req: { tokens: readonly number[] }; slot: number }>(joining: readonly J[]): { unique: J[]; prefillRow: number[] } {
  const unique: J[] = [];
  const prefillRow: number[] = [];
  const rowOfPrompt = new Map<string, number>();
  for (const j of joining) {
    const key = `${j.slot}:${j.req.tokens.join(",")}`;
    let row = rowOfPrompt.get(key);
    if (row === undefined) rowOfPrompt.set(key, (row = unique.push(j) - 1));
    prefillRow.push(row);
  }
  return { unique, prefillRow };
}
