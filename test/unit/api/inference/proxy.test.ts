// callRunners: which runner answer ends the search, and what the caller hears when none serves.
import { describe, expect, it } from "vitest";
import { ApiError } from "../../../../api/src/errors.js";
import { callRunners } from "../../../../api/src/inference/proxy.js";
import type { GenerateRequestInput } from "../../../../api/src/inference/runner-protocol.js";

const body = { request_id: "req_1", model: "micro-llama", adapter: "ft:micro-llama:ten_1::abc", input: { kind: "prompt", prompt: "hi" }, max_tokens: 4 } as unknown as GenerateRequestInput;
const targets = [
  { id: "r1", url: "http://r1", holdsAdapter: false },
  { id: "r2", url: "http://r2", holdsAdapter: false },
];
const answering = (byHost: Record<string, [number, unknown]>) => (async (url: URL | RequestInfo) => {
  const [status, json] = byHost[new URL(String(url)).host];
  return new Response(JSON.stringify(json), { status });
}) as typeof fetch;
const notFound = { error: { code: "adapter_not_found", message: "gone" } };

describe("callRunners", () => {
  it("skips a runner that cannot serve and returns the next one's answer", async () => {
    const r = await callRunners(targets, body, "t", answering({ r1: [404, notFound], r2: [200, { ok: true }] }));
    expect(r.runner.id).toBe("r2");
  });

  it("answers 404 naming the model when every runner found its adapter files gone (retrying cannot help)", async () => {
    const err = await callRunners(targets, body, "t", answering({ r1: [404, notFound], r2: [404, notFound] })).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: "not_found", param: "model" });
    expect(err.message).toContain("adapter files are gone");
  });

  it("skips a runner that refuses the runner token: a deployment fault, not the caller's", async () => {
    const r = await callRunners(targets, body, "t", answering({ r1: [401, { error: { message: "bad runner token" } }], r2: [200, { ok: true }] }));
    expect(r.runner.id).toBe("r2");
    const err = await callRunners(targets, body, "t", answering({ r1: [403, {}], r2: [401, {}] })).catch((e) => e);
    expect(err).toMatchObject({ code: "unavailable" });
  });

  it("answers 503 with Retry-After when runners fail otherwise, naming no runner and quoting none of their answers", async () => {
    const err = await callRunners(targets, body, "t", answering({ r1: [404, notFound], r2: [500, { error: { code: "internal_error", message: "/var/cache/runner/x broke" } }] })).catch((e) => e);
    expect(err).toMatchObject({ code: "unavailable" });
    expect(err.message).not.toMatch(/r1|r2|var\/cache/);
  });
});
