// Admin prices and the costs GET /v1/usage shows with them: a base model's own price (its fine-tuned models
// included) over the kind's default, and null where no price applies.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordUsage, type UsageKind } from "../../../api/src/usage/record.js";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { registerMicroLlama } from "../../helpers/jobs.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
  await registerMicroLlama(api);
});
afterAll(() => api.close());

const admin = (method: string, path: string, json?: unknown) => api.call(method, `/admin/v1${path}`, { token: api.admin, json });
const setPrice = async (kind: string, usd: number, model?: string | null) => {
  const res = await admin("PUT", "/prices", { kind, model, usd_per_million: usd });
  expect(res.status).toBe(200);
  return res.json();
};

describe("prices", () => {
  it("prices usage per kind and base model, fine-tuned models as their base", async () => {
    const t = await api.tenant("priced");
    const now = api.deps.now();
    const bill = (key: string, kind: UsageKind, model: string, quantity: number) => recordUsage(api.deps.db, { idempotencyKey: key, tenantId: t.id, kind, model, quantity, ref: key, now });
    await bill("p1", "prompt_tokens", "micro-llama", 2_000_000);
    await bill("p2", "prompt_tokens", `ft:micro-llama:${t.id}:x:abc`, 1_000_000);
    await bill("p3", "prompt_tokens", "other-model", 500_000);
    await bill("c1", "completion_tokens", "micro-llama", 10);

    expect(await setPrice("prompt_tokens", 0.5)).toMatchObject({ object: "price", kind: "prompt_tokens", model: null, usd_per_million: 0.5 });
    await setPrice("prompt_tokens", 2, "micro-llama");
    await setPrice("prompt_tokens", 3, "micro-llama"); // replaces the one before
    const list = await (await admin("GET", "/prices")).json();
    expect(list.data.map((p: { kind: string; model: string | null; usd_per_million: number }) => [p.kind, p.model, p.usd_per_million])).toEqual([
      ["prompt_tokens", null, 0.5],
      ["prompt_tokens", "micro-llama", 3],
    ]);

    const usage = async (groupBy: string) => (await (await api.call("GET", `/v1/usage?group_by=${groupBy}`, { token: t.key })).json()).data;
    // micro-llama and its fine-tuned model at $3/M (3 M tokens: $9), other-model at the default $0.5/M ($0.25).
    expect((await usage("kind,model")).map((b: { kind: string; model: string; cost_usd: number | null }) => [b.kind, b.model, b.cost_usd])).toEqual([
      ["completion_tokens", "micro-llama", null],
      ["prompt_tokens", `ft:micro-llama:${t.id}:x:abc`, 3],
      ["prompt_tokens", "micro-llama", 6],
      ["prompt_tokens", "other-model", 0.25],
    ]);
    expect((await usage("kind")).map((b: { kind: string; quantity: number; cost_usd: number | null }) => [b.kind, b.quantity, b.cost_usd])).toEqual([
      ["completion_tokens", 10, null],
      ["prompt_tokens", 3_500_000, 9.25],
    ]);
    // Without the default, other-model has no price: the bucket that holds it has no cost.
    expect(await (await admin("DELETE", "/prices?kind=prompt_tokens")).json()).toMatchObject({ kind: "prompt_tokens", model: null, deleted: true });
    expect((await usage("kind")).find((b: { kind: string }) => b.kind === "prompt_tokens").cost_usd).toBeNull();
    await expectError(await admin("DELETE", "/prices?kind=prompt_tokens"), 404, "not_found");
  });

  it("refuses unknown kinds, unregistered models and negative prices", async () => {
    expect((await expectError(await admin("PUT", "/prices", { kind: "gpu_hours", usd_per_million: 1 }), 400, "invalid_request")).param).toBe("kind");
    expect((await expectError(await admin("PUT", "/prices", { kind: "prompt_tokens", model: "nope", usd_per_million: 1 }), 400, "invalid_request")).param).toBe("model");
    await expectError(await admin("PUT", "/prices", { kind: "prompt_tokens", usd_per_million: -1 }), 400, "invalid_request");
    const ft = await expectError(await admin("PUT", "/prices", { kind: "prompt_tokens", model: "ft:micro-llama:ten_x:s:abcdefabcdef", usd_per_million: 1 }), 400, "invalid_request");
    expect(ft.message).toContain("priced as their base model ('micro-llama')");
    const t = await api.tenant("not-admin");
    await expectError(await api.call("GET", "/admin/v1/prices", { token: t.key }), 401, "unauthorized");
  });
});
