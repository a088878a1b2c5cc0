// The answer to a retried completion whose Idempotency-Key already finished: the stored result, shaped as
// the request asks (JSON, or per choice one SSE chunk with its whole text or tool call), marked with Idempotent-Replayed: true.
import type { Context } from "hono";
import type { AppEnv } from "../deps.js";
import type { StoredCompletion } from "./idempotency.js";
import { chunkObject, completionObject, type CompletionKind } from "./openai-response.js";
import { sseData } from "./sse.js";
import { ToolCallStream, toolCallId, toolFinish, withCallFormat, type ToolCallShape } from "./tool-calls.js";

type ReplayCall = { kind: CompletionKind; model: string; stream: boolean; includeUsage: boolean; toolCall?: ToolCallShape | null };

export function replayCompletion(c: Context<AppEnv>, call: ReplayCall, r: StoredCompletion): Response {
  const meta = { id: r.id, created: r.created, model: call.model };
  const headers = { "Idempotent-Replayed": "true", "X-Request-Id": c.var.requestId };
  const tools = withCallFormat(call.toolCall ?? null, r.tool_call_format, r.tool_call_ids);
  if (!call.stream) return c.json(completionObject(call.kind, meta, r.choices, r.usage, tools), 200, headers);
  const enc = new TextEncoder();
  const chunk = (part: Parameters<typeof chunkObject>[2]) => chunkObject(call.kind, meta, part, call.includeUsage);
  const events: unknown[] = [
    ...r.choices.flatMap((ch, index) => {
      const logprobs = ch.logprobs ?? undefined;
      if (!tools) {
        const opening = call.kind === "chat" ? [chunk({ index, role: true, logprobs: logprobs ? [] : undefined })] : [];
        return [...opening, chunk({ index, text: ch.text, logprobs })];
      }
      // A tool call's choice as its stream would send it, in as few deltas as that allows.
      const stream = new ToolCallStream(tools, (k) => toolCallId(meta.id, index, k));
      const sent = [stream.push(ch.text), ...stream.end(ch.finish_reason)].filter((d) => d !== null);
      // A choice whose text sends nothing still carries its logprobs.
      const deltas = sent.length > 0 || !logprobs ? sent : [{}];
      return [
        chunk({ index, role: true, logprobs: logprobs ? [] : undefined, delta: stream.opening() }),
        ...deltas.map((delta, k) => chunk({ index, delta, logprobs: k === 0 ? logprobs : undefined })),
      ];
    }),
    ...r.choices.map((ch, index) => chunk({ index, reason: tools ? toolFinish(ch, tools) : ch.finish_reason })),
  ];
  if (call.includeUsage) events.push(chunk({ usage: r.usage }));
  events.push("[DONE]");
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const e of events) controller.enqueue(sseData(enc, e));
      controller.close();
    },
  });
  return new Response(body, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", ...headers } });
}
