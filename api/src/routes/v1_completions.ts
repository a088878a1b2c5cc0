// POST /v1/completions (OpenAI legacy text completions): a raw prompt, JSON or SSE; the model is a base
// model or one of the caller's fine-tuned models.
import { createRoute } from "@hono/zod-openapi";
import type { Router } from "../app.js";
import { runCompletion } from "../inference/complete.js";
import { completionRequestSchema, type CompletionRequest, samplingOf } from "../inference/openai-request.js";
import { completionResponseSchema, completionResponses } from "../inference/openai-response.js";
import { idempotencyHeaders } from "../lib/idempotency-keys.js";
import { bearerSecurity, jsonBody } from "../lib/openapi.js";

/** OpenAI's default for /v1/completions. */
const defaultMaxTokens = 16;

const route = createRoute({
  method: "post",
  path: "/v1/completions",
  security: bearerSecurity,
  request: { ...jsonBody(completionRequestSchema), headers: idempotencyHeaders },
  responses: completionResponses(completionResponseSchema, "text_completion chunks, then data: [DONE]"),
});

export type { CompletionRequest };

export function registerCompletions(app: Router): void {
  app.openapi(route, async (c) => {
    const b = c.req.valid("json");
    const prompt = typeof b.prompt === "string" ? b.prompt : b.prompt[0];
    return runCompletion(c, {
      kind: "text",
      model: b.model,
      input: { prompt },
      max_tokens: b.max_tokens ?? defaultMaxTokens,
      maxTokensDefault: b.max_tokens == null,
      ...samplingOf(b),
      logprobs: b.logprobs ?? null,
      format: "text",
      jsonSchema: null,
      echo: b.echo ? prompt : null,
      bestOf: b.best_of ?? b.n ?? 1,
    }) as never;
  });
}
