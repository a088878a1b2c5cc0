// The runner's lease loop against a scripted client: a lease call whose answer was lost is asked again under the
// same idempotency key (so the API hands back the job it leased), and the next lease gets a new key.
import { describe, expect, it } from "vitest";
import { ApiCallError, type RunnerApiClient } from "../../../gpu-runner/src/runner/api-client.js";
import { LeaseLoop, type LeaseLoopOptions } from "../../../gpu-runner/src/runner/lease-loop.js";

describe("LeaseLoop", () => {
  it("repeats a lease call that got no answer under the same idempotency key, and asks for the next lease under a new one", async () => {
    const keys: Array<string | undefined> = [];
    let done!: () => void;
    const fourCalls = new Promise<void>((ok) => (done = ok));
    // Lost answer (the client gave up), then nothing queued twice, then the loop is stopped.
    const answers: Array<() => Promise<null>> = [
      () => Promise.reject(new ApiCallError("POST /internal/v1/jobs/lease: gave up after 6 tries: fetch failed", null, null, true)),
      () => Promise.resolve(null),
      () => Promise.resolve(null),
    ];
    const client = {
      lease: (_runnerId: string, key?: string) => {
        keys.push(key);
        if (keys.length === 4) done();
        return (answers[keys.length - 1] ?? (() => Promise.resolve(null)))();
      },
    } as unknown as RunnerApiClient;
    const loop = new LeaseLoop({
      client, register: async () => ({ id: "run_1", lease_seconds: 60 }), runnerId: "run_1", trainingJobs: 1, pollSeconds: 0.005, pollMaxSeconds: 0.01,
      executor: { log: () => {} } as unknown as LeaseLoopOptions["executor"], leaseSeconds: 60, onSuperseded: () => {},
    });
    loop.start();
    await fourCalls;
    await loop.stop();
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(new Set(keys.slice(1, 4)).size).toBe(3);
  });
});
