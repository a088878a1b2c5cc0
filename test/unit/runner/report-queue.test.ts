// ReportQueue: a training attempt's reports go out in order, one at a time; a lost lease is handed on and is
// not a failure; the first report that fails for good cancels the training and is what drained() throws.
import { describe, expect, it } from "vitest";
import { LeaseLostError } from "../../../gpu-runner/src/runner/api-client.js";
import { ReportQueue, type ReportedEvent } from "../../../gpu-runner/src/runner/report-queue.js";

const log = (message: string): ReportedEvent => ({ type: "log", level: "info", message });

function queue(report: (e: ReportedEvent) => Promise<void>) {
  const seen = { lost: [] as string[], failed: 0 };
  const q = new ReportQueue({ report, leaseLost: (r) => seen.lost.push(r), failed: () => seen.failed++ });
  return { q, seen };
}

describe("ReportQueue", () => {
  it("reports in order, starting each only once the one before it is settled", async () => {
    const events: string[] = [];
    const { q } = queue(async (e) => {
      const m = (e as { message: string }).message;
      events.push(`start ${m}`);
      await new Promise((ok) => setTimeout(ok, m === "a" ? 20 : 1));
      events.push(`end ${m}`);
    });
    q.add(log("a"));
    q.add(log("b"));
    await q.drained();
    expect(events).toEqual(["start a", "end a", "start b", "end b"]);
    expect(q.ok).toBe(true);
  });

  it("hands a lost lease on without counting it as a failure", async () => {
    const { q, seen } = queue(async () => {
      throw new LeaseLostError("job ftjob-1 was cancelled");
    });
    q.add(log("a"));
    await q.drained();
    expect(seen).toEqual({ lost: ["job ftjob-1 was cancelled"], failed: 0 });
    expect(q.ok).toBe(true);
  });

  it("cancels the training on a failure, goes on with later reports, and throws the first failure", async () => {
    const sent: string[] = [];
    const { q, seen } = queue(async (e) => {
      const m = (e as { message: string }).message;
      if (m !== "c") throw new Error(`report ${m} refused`);
      sent.push(m);
    });
    q.add(log("a"));
    q.add(log("b"));
    q.add(log("c"));
    await q.settled;
    expect(q.ok).toBe(false);
    expect(seen.failed).toBe(2);
    expect(sent).toEqual(["c"]);
    await expect(q.drained()).rejects.toThrow("report a refused");
  });
});
