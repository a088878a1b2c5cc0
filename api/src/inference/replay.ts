// The answer to a retried completion whose Idempotency-Key already finished: the stored result, shaped as
// the request asks (JSON, or per choice one SSE chunk with its whole text or tool call), marked with Idempotent-Replayed: true.
import type { Context } from "hono";
import type { AppEnv } from "../deps.js";
import type { StoredCompletion } from "./idempotency.js";
import { chunkObject, completionObject, type CompletionKind } from "./openai.js";
import { sseData } from "./sse.js";
import { toolCallId, toolDeltas, toolFinish, type ToolCallShape } from "./tool-calls.js";

type ReplayCall = { kind: CompletionKind; model: string; stream: boolean; includeUsage: boolean; toolCall?: ToolCallShape | null };

export function replayCompletion(c: Context<AppEnv>, call: ReplayCall, r: StoredCompletion): Response {
  const meta = { id: r.id, created: r.created, model: call.model };
  const headers = { "Idempotent-Replayed": "true", "X-Request-Id": c.var.requestId };
  const tools = call.toolCall ?? null;
  if (!call.stream) return c.json(completionObject(call.kind, meta, r.choices, r.usage, tools), 200, headers);
  const enc = new TextEncoder();
  // A tool call's whole text in one delta: with several tools that is the whole call, with one its arguments.
  const callDelta = (ch: StoredCompletion["choices"][number], index: number) => (tools ? (toolDeltas.end(tools, ch.text, toolCallId(meta.id, index)) ?? toolDeltas.text(tools, ch.text)!) : undefined);
  const events: unknown[] = [
    ...r.choices.flatMap((ch, index) => [
      ...(call.kind === "chat" ? [chunkObject(call.kind, meta, { index, role: true, logprobs: ch.logprobs ? [] : undefined, delta: tools ? toolDeltas.opening(tools, toolCallId(meta.id, index)) : undefined })] : []),
      chunkObject(call.kind, meta, { index, text: ch.text, logprobs: ch.logprobs ?? undefined, delta: callDelta(ch, index) }),
    ]),
    ...r.choices.map((ch, index) => chunkObject(call.kind, meta, { index, reason: tools ? toolFinish(ch.finish_reason, tools) : ch.finish_reason })),
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
