// OpenAI's request shapes of /v1/chat/completions and /v1/completions (zod, so a bad sampling parameter is a
// 400 naming it), and the options both routes pass to the runner.
import { z } from "@hono/zod-openapi";
import { MAX_CHOICES, MAX_TOOLS, MAX_TOP_LOGPROBS, TOOL_NAME, toolCallSchema } from "./runner-protocol.js";
import type { ToolCallShape } from "./tool-calls.js";
import { historyIssues, report, turnIssues, unansweredIssues } from "./tool-turns.js";
import { messageContentOf } from "./message-content.js";
import { MAX_JSON_DEPTH, TOO_DEEP, jsonDepth } from "../lib/json-depth.js";

/**
 * An OpenAI option this server does not implement: accepted only at its "off" value (as clients often send
 * it), otherwise a 400 naming it, rather than silently answering something else.
 */
const unsupported = (off: (v: unknown) => boolean, what = "is not supported by this server") =>
  z.unknown().refine((v) => v === null || v === undefined || off(v), what).optional().openapi({ description: "not supported: omit it or send its default" });
/** An OpenAI field with no effect on this server's answer (billing tiers, caching hints, stored logs): accepted, ignored. */
const ignored = z.unknown().optional().openapi({ description: "accepted and ignored: it has no effect on this server's answer" });
/** `{"type":"text"}`, looked at without JSON.stringify (which overflows the stack on a value nested thousands deep). */
const isTextFormat = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && (v as { type?: unknown }).type === "text";
const isEmpty = (v: unknown) => (Array.isArray(v) ? v.length === 0 : typeof v === "object" && v !== null && Object.keys(v).length === 0);

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Sampling and control fields both endpoints share. Optional ones take null as "not set", as OpenAI's
 * API does; samplingOf applies the defaults.
 */
export const samplingFields = {
  model: z.string().min(1).max(256).openapi({ description: "a base model or one of your fine-tuned models", example: "tuneserve-micro" }),
  max_tokens: z.number().min(1).max(32768).int().nullish().openapi({ description: "most tokens to generate" }),
  temperature: z.number().min(0).max(2).nullish().openapi({ description: "default 1; 0 = greedy" }),
  top_p: z.number().gt(0).max(1).nullish().openapi({ description: "default 1" }),
  top_k: z.number().int().min(0).max(100000).nullish().openapi({ description: "default 0 = off (an extension; OpenAI has no top_k)" }),
  seed: z.number().int().min(0).max(2 ** 32 - 1).nullish().openapi({ description: "same seed, same settings, same model: same tokens" }),
  stop: z
    .union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(4)], { error: "stop must be a string or an array of up to 4 strings of 1–256 characters" })
    // Half a surrogate pair would cut a character in two, leaving text no strict JSON reader takes.
    .refine((s) => (Array.isArray(s) ? s : [s]).every((x) => !LONE_SURROGATE.test(x)), "stop strings must be well-formed Unicode (no lone surrogate)")
    .nullish()
    .openapi({ description: "up to 4 stop strings; the text ends before the first" }),
  n: z.number().int().min(1).max(MAX_CHOICES).nullish().openapi({ description: `1–${MAX_CHOICES}, default 1: completions of the prompt, each billed; choice i samples with seed + i` }),
  stream: z.boolean().nullish().openapi({ description: "default false; server-sent events, ending with data: [DONE]" }),
  stream_options: z
    // include_obfuscation pads OpenAI's chunks against length side channels; this server sends none (accepted, ignored).
    .object({ include_usage: z.boolean().nullish(), include_obfuscation: z.boolean().nullish() })
    .strict()
    .nullish()
    .openapi({ description: "include_usage (default false, as in OpenAI): a last chunk with usage and no choices; include_obfuscation is accepted and ignored" }),
  user: z.string().max(256).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish().openapi({ description: "−2…2, default 0: lowers a token's logit by this much for every time it already appears in the completion" }),
  presence_penalty: z.number().min(-2).max(2).nullish().openapi({ description: "−2…2, default 0: lowers a token's logit by this much once it appears in the completion" }),
  logit_bias: z
    .record(z.string().regex(/^(0|[1-9]\d{0,8})$/, "logit_bias keys are token ids (of the model's tokenizer)"), z.number().min(-100).max(100))
    .refine((m) => Object.keys(m).length <= 300, "logit_bias takes at most 300 tokens")
    .nullish()
    .openapi({ description: "at most 300 token ids of the model's tokenizer → −100…100, added to that token's logit at every step (−100 bans it, 100 all but forces it)" }),
};

/** A tool the model may be made to call (OpenAI's tools[]); `parameters` is a JSON Schema of an object, in the subset Structured Outputs takes. */
// Strict, as the request is: a misspelt key (`paramters`) would otherwise drop what it meant unseen.
const toolSchema = z
  .object({
    type: z.literal("function", { error: 'a tool is {"type":"function","function":{…}}' }),
    function: z
      .object({
        name: z.string().regex(TOOL_NAME, "1–64 letters, digits, _ or -"),
        description: z.string().max(10_000).nullish(),
        parameters: z.record(z.string(), z.unknown()).refine((p) => jsonDepth(p) <= MAX_JSON_DEPTH, TOO_DEEP).nullish(),
        strict: z.boolean().nullish(),
      })
      .strict(),
  })
  .strict();

/** tool_choice: "none" (answer in text), "auto" (the model decides), "required" (call one of the tools) or a named function (call it). */
const toolChoiceSchema = z.union(
  [z.enum(["none", "auto", "required"]), z.object({ type: z.literal("function"), function: z.object({ name: z.string().min(1).max(64) }).strict() }).strict()],
  { error: 'tool_choice is "none", "auto", "required" or {"type":"function","function":{"name":…}}' },
);

const chatMessageSchema = z
  .object({
    role: z.enum(["system", "user", "assistant", "developer", "tool"], { error: "role must be system, developer, user, assistant or tool" }),
    // Before content: an assistant turn with tool calls has content null.
    tool_calls: z.array(toolCallSchema).max(MAX_TOOLS).nullish(),
    function_call: unsupported(() => false, "function_call is OpenAI's deprecated form; send tool_calls"),
    content: messageContentOf(1_000_000).nullish(),
    tool_call_id: z.string().min(1).max(256).nullish(),
    name: z.string().max(64).nullish(),
  })
  .superRefine((m, ctx) => report(ctx, turnIssues(m)));

/** How a request's answer holds tool calls (forced, or auto: the model decides), or null when it answers in text. */
export function toolCallShapeOf(b: { tools?: { function: { name: string } }[] | null; tool_choice?: z.infer<typeof toolChoiceSchema> | null; parallel_tool_calls?: boolean | null }): ToolCallShape | null {
  const choice = b.tool_choice ?? "auto";
  const names = (b.tools ?? []).map((t) => t.function.name);
  if (names.length === 0 || choice === "none") return null;
  if (choice === "auto") return { names, finish: "tool_calls", auto: true, ...(b.parallel_tool_calls === false ? { single: true } : {}) };
  if (choice === "required") return { names, finish: "tool_calls" };
  return { names: [choice.function.name], finish: "stop" };
}

/** Tool turns answer a call an earlier assistant turn made; names and choices refer to tools that exist. */
function checkTools(
  b: { messages: z.infer<typeof chatMessageSchema>[]; tools?: z.infer<typeof toolSchema>[] | null; tool_choice?: z.infer<typeof toolChoiceSchema> | null; response_format?: { type: string } | null; stop?: string | string[] | null },
  ctx: z.RefinementCtx,
): void {
  // Earlier calls may name tools the request no longer lists.
  report(ctx, historyIssues(b.messages, null));
  report(ctx, unansweredIssues(b.messages));
  const names = (b.tools ?? []).map((t) => t.function.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) ctx.addIssue({ code: "custom", path: ["tools"], message: `two tools are named ${twice}` });
  // OpenAI's default: "auto" with tools, "none" without.
  const choice = b.tool_choice ?? (b.tools?.length ? "auto" : "none");
  if (choice === "none") return;
  if (!b.tools?.length) return void ctx.addIssue({ code: "custom", path: ["tool_choice"], message: "tool_choice needs tools" });
  if (typeof choice === "object" && !names.includes(choice.function.name)) ctx.addIssue({ code: "custom", path: ["tool_choice", "function", "name"], message: `${choice.function.name} is not one of the tools` });
  if ((b.response_format?.type ?? "text") !== "text") ctx.addIssue({ code: "custom", path: ["response_format"], message: "an answer that may call tools cannot also follow response_format; send tool_choice none, or response_format text" });
  // A stop string would end a forced call's JSON wherever it matched, and the call would still read as finished.
  if (choice !== "auto" && b.stop != null && b.stop.length > 0) ctx.addIssue({ code: "custom", path: ["stop"], message: "stop strings would cut a forced tool call's JSON short; leave stop out" });
}

/** As OpenAI: stream_options are for a streamed answer only (include_usage would otherwise be silently unused). */
const streamOptionsNeedStream = (b: { stream?: boolean | null; stream_options?: unknown }) => b.stream_options == null || b.stream === true;
const streamOptionsError = { path: ["stream_options"], message: "stream_options is only allowed with stream: true" };

export const chatRequestSchema = z
  .object({
    messages: z.array(chatMessageSchema).min(1).max(1024),
    max_completion_tokens: z.number().min(1).max(32768).int().nullish().openapi({ description: "alias of max_tokens" }),
    ...samplingFields,
    tools: z.array(toolSchema).max(MAX_TOOLS).nullish().openapi({ description: `up to ${MAX_TOOLS} functions; the chat template lists them for the model (an empty list is none)` }),
    tool_choice: toolChoiceSchema.nullish().openapi({ description: '"auto" (the default with tools): the model decides (needs a chat template that writes <tool_call> blocks, Llama 3.1 JSON calls or Mistral [TOOL_CALLS] calls, old or new); "required": call one of the tools; {"type":"function","function":{"name"}}: call that one; "none": answer in text' }),
    parallel_tool_calls: z.boolean().nullish().openapi({ description: "false: under auto the answer ends after its first call (default true: several calls may follow one another); a forced call is always one call per choice" }),
    functions: unsupported(isEmpty, "functions is OpenAI's deprecated form of tools; send tools"),
    function_call: unsupported((v) => v === "none", "function_call is OpenAI's deprecated form of tool_choice; send tool_choice"),
    response_format: z
      .object({
        type: z.enum(["text", "json_object", "json_schema"], { error: 'one of "text", "json_object" (JSON mode) or "json_schema" (Structured Outputs)' }),
        json_schema: z
          .object({
            name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "1–64 letters, digits, _ or -"),
            description: z.string().max(10_000).nullish(),
            schema: z.record(z.string(), z.unknown()).refine((p) => jsonDepth(p) <= MAX_JSON_DEPTH, TOO_DEEP),
            strict: z.boolean().nullish(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .refine((f) => f.type !== "json_schema" || f.json_schema !== undefined, { path: ["json_schema"], message: 'type json_schema needs json_schema: {"name", "schema"}' })
      .refine((f) => f.type === "json_schema" || f.json_schema === undefined, { path: ["json_schema"], message: "json_schema goes only with type json_schema" })
      .nullish()
      .openapi({ description: '{"type":"json_object"}: the answer is one JSON object (JSON mode); {"type":"json_schema","json_schema":{"name","schema"}}: one that follows the schema (a subset of JSON Schema, enforced whatever `strict` says); default {"type":"text"}' }),
    logprobs: z.boolean().nullish().openapi({ description: "default false: each generated token's log-probability in choices[].logprobs.content" }),
    top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullish().openapi({ description: `0–${MAX_TOP_LOGPROBS} most likely alternatives per token; needs logprobs: true` }),
    modalities: unsupported((v) => Array.isArray(v) && v.every((m) => m === "text"), 'modalities: only ["text"]'),
    audio: unsupported(() => false, "audio output is not supported"),
    prediction: unsupported(() => false, "predicted outputs are not supported"),
    web_search_options: unsupported(() => false, "web search is not supported"),
    store: ignored,
    metadata: ignored,
    service_tier: ignored,
    prompt_cache_key: ignored,
    prompt_cache_retention: ignored,
    safety_identifier: ignored,
    reasoning_effort: ignored,
    verbosity: ignored,
  })
  // A field neither OpenAI's nor ours is a 400 naming it (app.ts), so that a misspelt option is not silently left out.
  .strict()
  .refine((b) => !b.top_logprobs || b.logprobs === true, { path: ["top_logprobs"], message: "top_logprobs needs logprobs: true" })
  // Aliases that disagree: neither can be the one meant.
  .refine((b) => b.max_tokens == null || b.max_completion_tokens == null || b.max_tokens === b.max_completion_tokens, {
    path: ["max_completion_tokens"],
    message: "max_tokens and max_completion_tokens are the same limit and disagree; send one of them",
  })
  .refine(streamOptionsNeedStream, streamOptionsError)
  .superRefine(checkTools)
  .openapi("ChatCompletionRequest");

export const completionRequestSchema = z
  .object({
    prompt: z
      .union([z.string().max(1_000_000), z.array(z.string().max(1_000_000)).length(1)], { error: "prompt must be a string, or an array of exactly one string (one prompt per request)" })
      .openapi({ description: "one prompt (a string, or an array of one)" }),
    ...samplingFields,
    logprobs: z.number().int().min(0).max(5).nullish().openapi({ description: "0–5: each generated token's log-probability and this many alternatives in choices[].logprobs" }),
    echo: z.boolean().nullish().openapi({ description: "default false: the text starts with the prompt (not with logprobs: the prompt's are not computed)" }),
    top_logprobs: unsupported((v) => v === 0, "top_logprobs is a chat option; here logprobs (0–5) is the number of alternatives"),
    response_format: unsupported(isTextFormat, "response_format (JSON mode) is an option of /v1/chat/completions"),
    tools: unsupported(isEmpty, "tools are an option of /v1/chat/completions"),
    tool_choice: unsupported((v) => v === "none", "tool_choice is an option of /v1/chat/completions"),
    best_of: z.number().int().min(1).max(MAX_CHOICES).nullish().openapi({ description: `1–${MAX_CHOICES}, default n: generates this many and answers the n with the highest log probability per token (all billed; not with stream)` }),
    suffix: unsupported((v) => v === "", "suffix is not supported: leave it out"),
  })
  .strict()
  .refine(streamOptionsNeedStream, streamOptionsError)
  .refine((b) => !(b.echo && b.logprobs != null), { path: ["echo"], message: "echo with logprobs needs the prompt's logprobs, which this server does not compute; drop one" })
  .refine((b) => b.best_of == null || b.best_of >= (b.n ?? 1), { path: ["best_of"], message: "best_of must be at least n" })
  .refine((b) => b.best_of == null || b.best_of === (b.n ?? 1) || !b.stream, { path: ["best_of"], message: "best_of above n cannot stream: the best are known only at the end" })
  .openapi("CompletionRequest");

export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

/** The sampling and streaming options both routes pass to the runner, from a parsed request. */
export function samplingOf(b: Pick<ChatRequest, "n" | "temperature" | "top_p" | "top_k" | "frequency_penalty" | "presence_penalty" | "logit_bias" | "seed" | "stop" | "stream" | "stream_options">) {
  return {
    temperature: b.temperature ?? 1,
    top_p: b.top_p ?? 1,
    top_k: b.top_k ?? 0,
    frequency_penalty: b.frequency_penalty ?? 0,
    presence_penalty: b.presence_penalty ?? 0,
    logit_bias: b.logit_bias ?? {},
    seed: b.seed ?? undefined,
    stop: b.stop == null ? [] : typeof b.stop === "string" ? [b.stop] : b.stop,
    stream: b.stream ?? false,
    includeUsage: b.stream_options?.include_usage ?? false,
    n: b.n ?? 1,
  };
}
