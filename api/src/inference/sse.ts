// Reads a runner's SSE answer as typed events (fetch streams only, so it runs in Workers too).
import { generateEventSchema, type GenerateEvent } from "./runner-protocol.js";

/**
 * Each `data:` event of an SSE body (a malformed event ends the stream with an error event), and a
 * cancel that stops the upstream (the runner then cancels its sequence).
 */
export function runnerEvents(body: ReadableStream<Uint8Array>): { events: AsyncGenerator<GenerateEvent>; cancel(): Promise<void> } {
  const reader = body.getReader();
  return { events: read(reader), cancel: () => reader.cancel() };
}

async function* read(reader: ReadableStreamDefaultReader<Uint8Array>): AsyncGenerator<GenerateEvent> {
  const decoder = new TextDecoder();
  let buf = "";
  let ended = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      ended = done;
      if (value) buf += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = block
          .split("\n")
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trimStart())
          .join("\n");
        if (!data) continue;
        const parsed = generateEventSchema.safeParse(JSON.parse(data));
        if (!parsed.success) {
          yield { type: "error", message: `runner sent a malformed event: ${data.slice(0, 200)}` };
          return;
        }
        yield parsed.data;
      }
      if (done) return;
    }
  } finally {
    // Stopped early (a malformed event, or the consumer left): cancel the body, which stops the runner's
    // sequence and ends the call's runner watch, rather than leaving the connection open and unread.
    if (ended) reader.releaseLock();
    else await reader.cancel().catch(() => undefined);
  }
}

/** Encodes one OpenAI-style SSE line. */
export const sseData = (enc: TextEncoder, payload: unknown): Uint8Array => enc.encode(`data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`);
