// Requests fired at once (Promise.all against the real app): each race ends in one coherent state, with
// answers that agree with it and no 500 from a constraint that a read-then-write let through.
import { afterEach, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../../helpers/api.js";
import { microLlama } from "../../helpers/jobs.js";

const open: TestApi[] = [];
async function fresh(env: Record<string, string> = {}): Promise<TestApi> {
  const api = await startTestApi(env);
  open.push(api);
  return api;
}
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

describe("admin model registration", () => {
  it("answers one of two registrations of one id at once 201 and the other 409, not a 500 from the primary key", async () => {
    const api = await fresh();
    const register = () => api.call("POST", "/admin/v1/models", { token: api.admin, json: { id: "micro-llama", source: `${microLlama}/base` } });
    const both = await Promise.all([register(), register(), register()]);
    expect(both.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    for (const res of both.filter((r) => r.status === 409)) expect((await res.json()).error).toMatchObject({ code: "conflict", param: "id" });
  });
});
