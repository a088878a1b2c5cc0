// POST /v1/chat/completions (OpenAI shape): chat messages rendered with the base model's template on the
// runner; JSON or SSE; the model is a base model or one of the caller's fine-tuned models.
import { createRoute } from "@hono/zod-openapi";
import type { Router } from "../app.js";
import { runCompletion } from "../inference/complete.js";
import { chatRequestSchema, chatResponseSchema, type ChatRequest, completionResponses, samplingOf } from "../inference/openai.js";
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

export function registerChatCompletions(app: Router): void {
  app.openapi(route, async (c) => {
    const b = c.req.valid("json");
    return runCompletion(c, {
      kind: "chat",
      model: b.model,
      input: { messages: b.messages.map((m) => ({ role: m.role, content: m.content })) },
      max_tokens: b.max_completion_tokens ?? b.max_tokens ?? defaultMaxTokens,
      ...samplingOf(b),
      logprobs: b.logprobs ? (b.top_logprobs ?? 0) : null,
      format: b.response_format?.type ?? "text",
      jsonSchema: b.response_format?.json_schema?.schema ?? null,
      echo: null,
      bestOf: b.n ?? 1,
    }) as never;
  });
}
