// Runner choice for inference: only live runners that serve the base model, adapter holders first.
import { describe, expect, it } from "vitest";
import { orderRunners } from "../../../../api/src/inference/runners.js";

const row = (id: string, o: { url?: string | null; models?: string[]; adapters?: string[]; lastSeenAt?: number } = {}) => ({
  id,
  url: o.url === undefined ? `http://${id}` : o.url,
  models: JSON.stringify(o.models ?? ["m"]),
  adapters: JSON.stringify(o.adapters ?? []),
  lastSeenAt: o.lastSeenAt ?? 1000,
});

describe("orderRunners", () => {
  const q = { baseModel: "m", adapter: "ft:m:t::a", now: 1000, freshSeconds: 60 };

  it("drops stale runners, runners without a URL and runners of other models", () => {
    const got = orderRunners([row("ok"), row("stale", { lastSeenAt: 900 }), row("nourl", { url: null }), row("other", { models: ["x"] })], q);
    expect(got.map((r) => r.id)).toEqual(["ok"]);
  });

  it("puts runners holding the adapter first and shuffles the rest", () => {
    const rows = [row("a"), row("b"), row("holder", { adapters: ["ft:m:t::a"] }), row("c")];
    const seq = [0.9, 0.1, 0.5, 0.3];
    let i = 0;
    const got = orderRunners(rows, q, () => seq[i++]);
    expect(got[0]).toEqual({ id: "holder", url: "http://holder", holdsAdapter: true });
    expect(got.slice(1).map((r) => r.id)).toEqual(["b", "c", "a"]);
    // Base-model calls prefer nobody.
    expect(orderRunners(rows, { ...q, adapter: null }, () => 0.5).every((r) => !r.holdsAdapter)).toBe(true);
  });
});
