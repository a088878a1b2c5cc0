// OpenAI's answer shapes of /v1/chat/completions and /v1/completions: the response objects and stream chunks
// built from a runner's answer, and the routes' OpenAPI responses.
import { z } from "@hono/zod-openapi";
import { errorSchema, errWithRetryAfter, json, replayed, tenantErrorResponses } from "../lib/openapi.js";
import type { GenerateUsage, LogprobEntry } from "./runner-protocol.js";
import { chatLogprobs, chatLogprobsSchema, completionLogprobs, completionLogprobsSchema } from "./logprobs.js";
import { toolCallId, toolFinish, toolMessage, type ToolCallShape } from "./tool-calls.js";

const usageSchema = z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() }).openapi("CompletionUsage");
const finish = z.enum(["stop", "length", "tool_calls"]);
const toolCallOut = z.object({ id: z.string(), type: z.literal("function"), function: z.object({ name: z.string(), arguments: z.string() }) });

export const chatResponseSchema = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({
          role: z.literal("assistant"),
          content: z.string().nullable(),
          refusal: z.null().openapi({ description: "always null: this server does not refuse in words (OpenAI's clients require the field)" }),
          tool_calls: z.array(toolCallOut).optional(),
        }),
        finish_reason: finish,
        logprobs: chatLogprobsSchema.nullable(),
      }),
    ),
    usage: usageSchema,
  })
  .openapi("ChatCompletion");

export const completionResponseSchema = z
  .object({
    id: z.string(),
    object: z.literal("text_completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(z.object({ index: z.number().int(), text: z.string(), finish_reason: finish, logprobs: completionLogprobsSchema.nullable() })),
    usage: usageSchema,
  })
  .openapi("Completion");

export type CompletionKind = "chat" | "text";
export type Finish = z.infer<typeof finish>;

export const usageOf = (u: GenerateUsage) => ({ prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.prompt_tokens + u.completion_tokens });

/** The response id: the request id behind an OpenAI-looking prefix, so support can find its usage events. */
export const responseId = (kind: CompletionKind, requestId: string) => (kind === "chat" ? "chatcmpl-" : "cmpl-") + requestId;

/** A choice's logprobs in the endpoint's shape; null when not asked for. `offset`: see completionLogprobs. */
const logprobsOf = (kind: CompletionKind, entries: LogprobEntry[] | null | undefined, offset = 0) =>
  !entries ? null : kind === "chat" ? chatLogprobs(entries) : completionLogprobs(entries, offset);

/** One finished choice: its text, why it ended, and its logprobs when the request asked for them. */
export type Choice = { text: string; finish_reason: Finish; logprobs: LogprobEntry[] | null };

/** The whole (non-streamed) response object; `tools`: the chat forced a tool call, which each choice's text is. */
export function completionObject(kind: CompletionKind, m: { id: string; created: number; model: string }, choices: Choice[], usage: GenerateUsage, tools: ToolCallShape | null = null) {
  if (kind === "chat") {
    const messageOf = (ch: Choice, index: number) => {
      const { role, content, ...calls } = tools ? toolMessage(ch, tools, (call) => toolCallId(m.id, index, call)) : { role: "assistant" as const, content: ch.text };
      // refusal: required (string | null) in OpenAI's ChatCompletionMessage; placed where OpenAI's answers have it.
      return { role, content, refusal: null, ...calls };
    };
    const shaped = choices.map((ch, index) => ({
      index,
      message: messageOf(ch, index),
      finish_reason: tools ? toolFinish(ch, tools) : ch.finish_reason,
      logprobs: logprobsOf(kind, ch.logprobs),
    }));
    return { ...m, object: "chat.completion" as const, choices: shaped, usage: usageOf(usage) };
  }
  const shaped = choices.map((ch, index) => ({ index, text: ch.text, finish_reason: ch.finish_reason, logprobs: logprobsOf(kind, ch.logprobs) }));
  return { ...m, object: "text_completion" as const, choices: shaped, usage: usageOf(usage) };
}

/**
 * One stream chunk of choice `index` (default 0): a chat choice's opening chunk (`role`: its role, empty
 * content, and an empty logprobs list when asked for, as OpenAI sends it), a text delta (reason null) with its
 * tokens' logprobs when asked for (`offset`: where its text starts in the choice's whole text), the choice's
 * final chunk (reason set), or the usage chunk (no choices). With `includeUsage` (the request's
 * stream_options.include_usage) every other chunk carries `usage: null`, as OpenAI's do.
 */
export function chunkObject(
  kind: CompletionKind,
  m: { id: string; created: number; model: string },
  part: { index?: number; text?: string; reason?: Finish | null; role?: boolean; usage?: GenerateUsage; logprobs?: LogprobEntry[]; offset?: number; delta?: Record<string, unknown> },
  includeUsage = false,
) {
  const index = part.index ?? 0;
  const object = kind === "chat" ? ("chat.completion.chunk" as const) : ("text_completion" as const);
  if (part.usage) return { ...m, object, choices: [], usage: usageOf(part.usage) };
  const reason = part.reason ?? null;
  const logprobs = logprobsOf(kind, part.logprobs, part.offset);
  const usage = includeUsage ? { usage: null } : {};
  if (kind === "chat") {
    // `delta`: a tool call's (tool-calls.ts).
    const delta = part.delta ?? (part.role ? { role: "assistant" as const, content: "" } : reason ? {} : { content: part.text ?? "" });
    return { ...m, object, choices: [{ index, delta, finish_reason: reason, logprobs }], ...usage };
  }
  return { ...m, object, choices: [{ index, text: part.text ?? "", finish_reason: reason, logprobs }], ...usage };
}

/** The OpenAPI responses of a completion route: the JSON answer or its SSE stream, and the runners' 429/503. */
export function completionResponses(schema: z.ZodTypeAny, streamDescription: string) {
  return {
    ...tenantErrorResponses,
    200: replayed({
      content: { "application/json": { schema }, "text/event-stream": { schema: z.string().openapi({ description: streamDescription }) } },
      description: "the completion, or its stream",
    }),
    409: errWithRetryAfter("a request with the same Idempotency-Key is still running; retry after the Retry-After seconds"),
    429: errWithRetryAfter("rate_limited: every runner for the model is busy or the tenant's requests_per_minute are used up, or quota_exceeded: the tenant's monthly tokens are used; retry after the Retry-After seconds"),
    503: json(errorSchema, "no runner serves the model right now"),
  };
}
