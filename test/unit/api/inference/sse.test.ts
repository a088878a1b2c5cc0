// runnerEvents: the runner's SSE body read as events; a read that stops early cancels the body, so the runner
// stops its sequence and the call's watch ends (it would otherwise probe an open, unread connection).
import { describe, expect, it } from "vitest";
import { runnerEvents } from "../../../../api/src/inference/sse.js";

/** A body that sends `events` and then stays open; reports whether it was cancelled. */
function openBody(events: string[]) {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const e of events) c.enqueue(new TextEncoder().encode(e));
    },
    cancel() {
      cancelled = true;
    },
  });
  return { body, cancelled: () => cancelled };
}

describe("runnerEvents", () => {
  it("ends with an error event on a malformed event and cancels the body", async () => {
    const b = openBody(['data: {"type":"delta","text":"a","token":1}\n\n', 'data: {"type":"nonsense"}\n\n']);
    const seen = [];
    for await (const e of runnerEvents(b.body).events) seen.push(e.type);
    expect(seen).toEqual(["delta", "error"]);
    expect(b.cancelled()).toBe(true);
  });

  it("cancels the body when the data is not JSON, and when the reader stops early", async () => {
    const bad = openBody(["data: {not json\n\n"]);
    await expect(async () => {
      for await (const _ of runnerEvents(bad.body).events);
    }).rejects.toThrow();
    expect(bad.cancelled()).toBe(true);
    const early = openBody(['data: {"type":"delta","text":"a","token":1}\n\n']);
    for await (const _ of runnerEvents(early.body).events) break;
    expect(early.cancelled()).toBe(true);
  });
});
