// Requests fired at once (Promise.all against the real app): each race ends in one coherent state, with
// answers that agree with it and no 500 from a constraint that a read-then-write let through.
import { afterEach, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../../helpers/api.js";
import { microLlama, registerMicroLlama, runnerCall } from "../../helpers/jobs.js";

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

describe("runner registration", () => {
  it("takes a registration and its retry from the same process at once: both 200, one id (a 409 would make the runner exit)", async () => {
    const api = await fresh();
    await registerMicroLlama(api);
    const register = () => runnerCall(api, "/runners/register", { name: "gpu-1", instance: "instance-1", models: ["micro-llama"], capacity: 2 });
    const both = await Promise.all([register(), register()]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    const [a, b] = await Promise.all(both.map((r) => r.json()));
    expect(a.id).toBe(b.id);
  });
});
