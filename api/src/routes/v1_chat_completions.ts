// POST /v1/chat/completions (OpenAI shape): chat messages rendered with the base model's template on the
// runner; JSON or SSE; the model is a base model or one of the caller's fine-tuned models.
import { createRoute } from "@hono/zod-openapi";
import type { Router } from "../app.js";
import { runCompletion } from "../inference/complete.js";
import { chatRequestSchema, type ChatRequest, toolCallShapeOf, samplingOf } from "../inference/openai-request.js";
import { chatResponseSchema, completionResponses } from "../inference/openai-response.js";
import { idempotencyHeaders } from "../lib/idempotency-keys.js";
import { bearerSecurity, jsonBody } from "../lib/openapi.js";

/** Chat answers default to this many tokens when neither max_tokens nor max_completion_tokens is set. */
const defaultMaxTokens = 256;

const route = createRoute({
  method: "post",
  path: "/v1/chat/completions",
  security: bearerSecurity,
  request: { ...jsonBody(chatRequestSchema), headers: idempotencyHeaders },
  responses: completionResponses(chatResponseSchema, "chat.completion.chunk events, then data: [DONE]"),
});

export type { ChatRequest };

/** A message as the runner takes it: tool fields only where set (so a plain chat's idempotency hash is what it was). */
function runnerMessage(m: ChatRequest["messages"][number]) {
  // OpenAI's developer role is its newer name for system instructions, the role chat templates know.
  return { role: m.role === "developer" ? "system" : m.role, content: m.content ?? "", ...(m.tool_calls?.length ? { tool_calls: m.tool_calls } : {}), ...(m.tool_call_id != null ? { tool_call_id: m.tool_call_id } : {}) };
}

/** A tool as the runner takes it (strict only when true: a request without it hashes as it did). */
function runnerTool(t: NonNullable<ChatRequest["tools"]>[number]) {
  const f = t.function;
  return { type: "function" as const, function: { name: f.name, ...(f.description != null ? { description: f.description } : {}), ...(f.parameters != null ? { parameters: f.parameters } : {}), ...(f.strict ? { strict: true } : {}) } };
}

export function registerChatCompletions(app: Router): void {
  app.openapi(route, async (c) => {
    const b = c.req.valid("json");
    const toolCall = toolCallShapeOf(b);
    return runCompletion(c, {
      kind: "chat",
      model: b.model,
      input: { messages: b.messages.map(runnerMessage), ...(b.tools?.length ? { tools: b.tools.map(runnerTool) } : {}) },
      max_tokens: b.max_completion_tokens ?? b.max_tokens ?? defaultMaxTokens,
      maxTokensDefault: (b.max_completion_tokens ?? b.max_tokens) == null,
      ...samplingOf(b),
      logprobs: b.logprobs ? (b.top_logprobs ?? 0) : null,
      format: toolCall ? (toolCall.auto ? "tool_auto" : "tool_call") : (b.response_format?.type ?? "text"),
      toolCall,
      jsonSchema: b.response_format?.json_schema?.schema ?? null,
      echo: null,
      bestOf: b.n ?? 1,
    }) as never;
  });
}
