// Prices and what usage costs (ARCHITECTURE.md §3: admin prices). A price is US dollars per million units of
// one usage kind, for one base model or, with model '', for every model without its own. Fine-tuned models
// (ft:<base>:…) are priced as their base model, so one price covers every tenant's adapters of that base.
import type { Db } from "../db/client.js";
import { prices } from "../db/schema.js";

export type PriceRow = typeof prices.$inferSelect;

/** The base model a usage event's model names: itself, or the <base> of ft:<base>:<tenant>:<suffix>:<id>. */
export function baseOf(model: string): string {
  return model.startsWith("ft:") ? model.split(":")[1] : model;
}

export class PriceList {
  private readonly byKey = new Map<string, number>();
  constructor(rows: Pick<PriceRow, "kind" | "model" | "usdPerMillion">[]) {
    for (const r of rows) this.byKey.set(`${r.kind}\u0000${r.model}`, r.usdPerMillion);
  }

  /** USD per million units of `kind` for `model`: its base model's price, else the kind's default; null: none set. */
  perMillion(kind: string, model: string): number | null {
    return this.byKey.get(`${kind}\u0000${baseOf(model)}`) ?? this.byKey.get(`${kind}\u0000`) ?? null;
  }

  /** What `quantity` units cost in USD, to the micro-dollar; null when no price applies. */
  cost(kind: string, model: string, quantity: number): number | null {
    const p = this.perMillion(kind, model);
    return p === null ? null : roundMicro((quantity * p) / 1e6);
  }
}

export const roundMicro = (usd: number) => Math.round(usd * 1e6) / 1e6;

export async function loadPrices(db: Db): Promise<PriceList> {
  return new PriceList(await db.select().from(prices));
}
