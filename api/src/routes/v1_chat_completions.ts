// POST /v1/chat/completions (OpenAI shape): chat messages rendered with the base model's template on the
// runner; JSON or SSE; the model is a base model or one of the caller's fine-tuned models.
import { createRoute, z } from "@hono/zod-openapi";
import type { Router } from "../app.js";
import { runCompletion } from "../inference/complete.js";
import { chatRequestSchema, chatResponseSchema, type ChatRequest } from "../inference/openai.js";
import { bearerSecurity, errorResponses, json, jsonBody } from "../lib/openapi.js";

/** Chat answers default to this many tokens when neither max_tokens nor max_completion_tokens is set. */
const defaultMaxTokens = 256;

const route = createRoute({
  method: "post",
  path: "/v1/chat/completions",
  security: bearerSecurity,
  request: jsonBody(chatRequestSchema),
  responses: {
    200: {
      content: { "application/json": { schema: chatResponseSchema }, "text/event-stream": { schema: z.string().openapi({ description: "chat.completion.chunk events, then data: [DONE]" }) } },
      description: "the completion, or its stream",
    },
    429: json(z.any(), "every runner for the model is busy; retry after the Retry-After seconds"),
    503: json(z.any(), "no runner serves the model right now"),
    ...errorResponses,
  },
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
      temperature: b.temperature,
      top_p: b.top_p,
      top_k: b.top_k,
      seed: b.seed,
      stop: b.stop === undefined ? [] : typeof b.stop === "string" ? [b.stop] : b.stop,
      stream: b.stream,
      includeUsage: b.stream_options?.include_usage ?? true,
    }) as never;
  });
}
