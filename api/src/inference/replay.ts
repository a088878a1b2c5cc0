// The answer to a retried completion whose Idempotency-Key already finished: the stored result, shaped as
// the request asks (JSON, or per choice one SSE chunk with its whole text), marked with Idempotent-Replayed: true.
import type { Context } from "hono";
import type { AppEnv } from "../deps.js";
import type { StoredCompletion } from "./idempotency.js";
import { chunkObject, completionObject, type CompletionKind } from "./openai.js";
import { sseData } from "./sse.js";

export function replayCompletion(c: Context<AppEnv>, call: { kind: CompletionKind; model: string; stream: boolean; includeUsage: boolean }, r: StoredCompletion): Response {
  const meta = { id: r.id, created: r.created, model: call.model };
  const headers = { "Idempotent-Replayed": "true", "X-Request-Id": c.var.requestId };
  if (!call.stream) return c.json(completionObject(call.kind, meta, r.choices, r.usage), 200, headers);
  const enc = new TextEncoder();
  const events: unknown[] = [
    ...r.choices.flatMap((ch, index) => [
      ...(call.kind === "chat" ? [chunkObject(call.kind, meta, { index, role: true, logprobs: ch.logprobs ? [] : undefined })] : []),
      chunkObject(call.kind, meta, { index, text: ch.text, logprobs: ch.logprobs ?? undefined }),
    ]),
    ...r.choices.map((ch, index) => chunkObject(call.kind, meta, { index, reason: ch.finish_reason })),
  ];
  if (call.includeUsage) events.push(chunkObject(call.kind, meta, { usage: r.usage }));
  events.push("[DONE]");
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const e of events) controller.enqueue(sseData(enc, e));
      controller.close();
    },
  });
  return new Response(body, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", ...headers } });
}
