// POST /v1/completions (OpenAI legacy text completions): a raw prompt, JSON or SSE; the model is a base
// model or one of the caller's fine-tuned models.
import { createRoute, z } from "@hono/zod-openapi";
import type { Router } from "../app.js";
import { runCompletion } from "../inference/complete.js";
import { completionRequestSchema, completionResponseSchema, type CompletionRequest } from "../inference/openai.js";
import { bearerSecurity, errorResponses, json, jsonBody } from "../lib/openapi.js";

/** OpenAI's default for /v1/completions. */
const defaultMaxTokens = 16;

const route = createRoute({
  method: "post",
  path: "/v1/completions",
  security: bearerSecurity,
  request: jsonBody(completionRequestSchema),
  responses: {
    200: {
      content: { "application/json": { schema: completionResponseSchema }, "text/event-stream": { schema: z.string().openapi({ description: "text_completion chunks, then data: [DONE]" }) } },
      description: "the completion, or its stream",
    },
    429: json(z.any(), "every runner for the model is busy; retry after the Retry-After seconds"),
    503: json(z.any(), "no runner serves the model right now"),
    ...errorResponses,
  },
});

export type { CompletionRequest };

export function registerCompletions(app: Router): void {
  app.openapi(route, async (c) => {
    const b = c.req.valid("json");
    return runCompletion(c, {
      kind: "text",
      model: b.model,
      input: { prompt: typeof b.prompt === "string" ? b.prompt : b.prompt[0] },
      max_tokens: b.max_tokens ?? defaultMaxTokens,
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
