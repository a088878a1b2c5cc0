// zod shapes of the inference call the API makes to a runner (docs/inference.md): one generation with a
// base model and an optional adapter, answered as JSON or as SSE events. The runner's server imports them.
import { z } from "zod";
import { MAX_JSON_DEPTH, TOO_DEEP, jsonDepth, jsonTextDepth } from "../lib/json-depth.js";

/** A function's name, as OpenAI allows it. */
export const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** The most tools one request may list. */
export const MAX_TOOLS = 128;

/** A call an assistant turn made (OpenAI's shape; `arguments` is the JSON text of an object). */
export const toolCallSchema = z.object({
  id: z.string().min(1).max(256),
  type: z.literal("function"),
  function: z.object({ name: z.string().regex(TOOL_NAME), arguments: z.string().max(1_000_000).refine((a) => jsonTextDepth(a) <= MAX_JSON_DEPTH, TOO_DEEP) }),
});

/** A chat message; an assistant turn may carry tool calls, and a `tool` turn answers the call `tool_call_id`. */
export const chatMessageSchema = z.object({
  role: z.string().min(1).max(64),
  content: z.string().max(1_000_000),
  tool_calls: z.array(toolCallSchema).min(1).max(MAX_TOOLS).optional(),
  tool_call_id: z.string().min(1).max(256).optional(),
});

/** A function the chat template lists for the model (OpenAI's tools[]); its parameters are a JSON Schema of an object. */
export const toolSchema = z.object({
  type: z.literal("function"),
  function: z.object({
    name: z.string().regex(TOOL_NAME),
    description: z.string().max(10_000).optional(),
    parameters: z.record(z.string(), z.unknown()).refine((p) => jsonDepth(p) <= MAX_JSON_DEPTH, TOO_DEEP).optional(),
    /** OpenAI's strict: the calls must follow the parameters, so parameters the grammar cannot enforce are refused. Not shown to the chat template. */
    strict: z.boolean().nullish(),
  }),
});
export type ToolSpec = z.infer<typeof toolSchema>;

export const generateInputSchema = z.union([
  z.object({ prompt: z.string().max(1_000_000) }).strict(),
  z.object({ messages: z.array(chatMessageSchema).min(1).max(1024), tools: z.array(toolSchema).min(1).max(MAX_TOOLS).optional() }).strict(),
  z.object({ tokens: z.array(z.number().int().min(0)).min(1).max(1_000_000) }).strict(),
]);

/**
 * tool_call: the answer is a call of one of `tool_names` (its arguments alone when there is one name);
 * tool_auto: text in which the model may call `tool_names` in its template's format (tool_call_format).
 */
const responseFormatSchema = z.enum(["text", "json_object", "json_schema", "tool_call", "tool_auto"]);
export type ResponseFormat = z.infer<typeof responseFormatSchema>;

/**
 * How the model's chat template writes tool calls, said back by the runner with tool_call and tool_auto: hermes,
 * `<tool_call>{"name", "arguments"}</tool_call>` blocks after any text; llama3_json, the whole answer is one
 * `{"name", "parameters"}` (Llama 3.1); mistral, `[TOOL_CALLS]` and a JSON array of `{"name", "arguments"}`
 * after any text; mistral_v11, after any text each call as `[TOOL_CALLS]name[ARGS]{arguments}` (Mistral's
 * tokenizer v11 and later: Mistral Small 3.x, Magistral, Devstral), `[CALL_ID]` and 9 letters or digits may come
 * before [ARGS] where the template writes call ids (tool_call_ids). Runners older than the field take "auto" only for hermes.
 */
export const toolCallFormatSchema = z.enum(["hermes", "llama3_json", "mistral", "mistral_v11"]);
export type ToolCallFormat = z.infer<typeof toolCallFormatSchema>;

/**
 * tool_call_format as a runner says it back: any name, so that a runner newer than the API, with a format the
 * API does not know, gets its answer through as text (tool-calls.ts withCallFormat) rather than a 500.
 */
const saidCallFormatSchema = z.string().min(1).max(64);

/**
 * tool_call_ids, said beside mistral_v11: whether the template writes call ids (`[CALL_ID]id` before [ARGS]), and so
 * whether a call may hold one. Runners older than the field leave it out, and let an id through under any such template.
 */
const saidCallIdsSchema = z.boolean();

/** Whether the API knows how to read calls in `format`. */
export const isKnownCallFormat = (format: string): format is ToolCallFormat => toolCallFormatSchema.safeParse(format).success;

/**
 * The text each format marks calls with, which the runner constrains and the API reads alike: `opening` and
 * `closing` around a call (Hermes) or before the array of calls (Mistral); `leadingTag`, what may come before a
 * call that is the whole answer (Llama 3.1's python tag, where it is spelled out as text).
 */
export const CALL_TAGS = {
  hermes: { opening: "<tool_call>", closing: "</tool_call>", leadingTag: "" },
  llama3_json: { opening: "", closing: "", leadingTag: "<|python_tag|>" },
  mistral: { opening: "[TOOL_CALLS]", closing: "", leadingTag: "" },
  mistral_v11: { opening: "[TOOL_CALLS]", closing: "", leadingTag: "" },
} as const satisfies Record<ToolCallFormat, { opening: string; closing: string; leadingTag: string }>;

/**
 * Within a mistral_v11 call, `name[CALL_ID]id[ARGS]{…}`: the tag before its arguments, and the one before the id that
 * some templates write in history (the model may write one; the API names calls itself).
 */
export const NAMED_CALL_TAGS = { args: "[ARGS]", callId: "[CALL_ID]" } as const;
/** A mistral_v11 call's id as its templates want it: 9 letters or digits. */
export const MISTRAL_CALL_ID = /^[A-Za-z0-9]{9}$/;

/** The most choices (`n`) one request may ask for. */
export const MAX_CHOICES = 16;
/** The most alternatives per token with logprobs (OpenAI's top_logprobs limit). */
export const MAX_TOP_LOGPROBS = 20;

export const generateRequestSchema = z.object({
  request_id: z.string().min(1).max(128),
  /** The base model id. */
  model: z.string().min(1).max(64),
  /** The adapter's model id (ft:…), or null for the base model. */
  adapter: z.string().min(1).max(256).nullable().default(null),
  input: generateInputSchema,
  max_tokens: z.number().int().min(1).max(1_000_000).default(16),
  /** max_tokens is the API's default, not the caller's: shortened to what the context leaves after the prompt rather than refused. */
  fit_max_tokens: z.boolean().default(false),
  /** The caller's tenant: the runner bounds each tenant's share of its queue and lets tenants take turns. Older runners ignore it. */
  tenant: z.string().min(1).max(128).optional(),
  temperature: z.number().min(0).max(2).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  top_k: z.number().int().min(0).default(0),
  frequency_penalty: z.number().min(-2).max(2).default(0),
  presence_penalty: z.number().min(-2).max(2).default(0),
  /** Token id → bias added to its logit at every step. */
  logit_bias: z.record(z.string().regex(/^(0|[1-9]\d{0,8})$/), z.number().min(-100).max(100)).default({}),
  seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  stop: z.array(z.string().min(1).max(256)).max(4).default([]),
  stream: z.boolean().default(false),
  /** Report each token's logprob with this many alternatives (0..20); null: off. Older runners ignore it. */
  logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullable().default(null),
  /** Completions of the same prompt (choice i samples with seed + i); older runners ignore it. */
  n: z.number().int().min(1).max(MAX_CHOICES).default(1),
  /** json_object: OpenAI's JSON mode (only tokens that continue one JSON object); json_schema: an object that follows `json_schema`. Older runners ignore both. */
  response_format: responseFormatSchema.default("text"),
  json_schema: z.record(z.string(), z.unknown()).refine((p) => jsonDepth(p) <= MAX_JSON_DEPTH, TOO_DEEP).nullable().default(null),
  /**
   * With response_format tool_call, the tools (by name, from input.tools) the answer calls: with one, the text is
   * its arguments (an object following its parameters); with several, `{"name": …, "arguments": …}`. With
   * tool_auto, the tools the model may call.
   */
  tool_names: z.array(z.string().regex(TOOL_NAME)).min(1).max(MAX_TOOLS).nullable().default(null),
  /** With tool_auto, whether the model may write several calls; false ends the answer after the first (older runners ignore it; the API then keeps the first call). */
  parallel_tool_calls: z.boolean().default(true),
})
  .refine((r) => (r.response_format === "json_schema") === (r.json_schema !== null), { path: ["json_schema"], message: "json_schema goes with response_format json_schema, and only with it" })
  .refine((r) => (r.response_format === "tool_call" || r.response_format === "tool_auto") === (r.tool_names !== null), { path: ["tool_names"], message: "tool_names goes with response_format tool_call or tool_auto, and only with them" })
  .refine((r) => r.tool_names === null || r.tool_names.every((n) => "messages" in r.input && r.input.tools?.some((t) => t.function.name === n)), { path: ["tool_names"], message: "every name in tool_names must be one of input.tools" });
export type GenerateRequest = z.infer<typeof generateRequestSchema>;
export type GenerateRequestInput = z.input<typeof generateRequestSchema>;

/** A token as logprobs show it: its text (decoded from its bytes, which may be part of a character) and bytes. */
const logprobTokenSchema = z.object({ token: z.string(), bytes: z.array(z.number().int().min(0).max(255)), logprob: z.number() });

/**
 * One generated token's logprob and its most likely alternatives (OpenAI's chat shape), and where its text starts
 * in the choice's text (completions' text_offset; hidden tokens and a character's first bytes: where their text
 * would be). Runners older than text_offset leave it out. Streamed, a token inside text held back for a stop string
 * has the offset it gets if that text goes out: past the text released so far until then, and cut to the text's
 * end when the stop string matches. The runner sends such a token's delta once its offset is final; older runners
 * sent it at once, uncut, so the API also waits (settled-offsets.ts, stream.ts).
 */
export const logprobEntrySchema = logprobTokenSchema.extend({ top_logprobs: z.array(logprobTokenSchema), text_offset: z.number().int().min(0).optional() });
export type LogprobEntry = z.infer<typeof logprobEntrySchema>;

export const finishReasonSchema = z.enum(["stop", "length"]);
export const generateUsageSchema = z.object({ prompt_tokens: z.number().int().min(0), completion_tokens: z.number().int().min(0) });
export type GenerateUsage = z.infer<typeof generateUsageSchema>;

/** One completion of the prompt. */
export const generateChoiceSchema = z.object({
  text: z.string(),
  tokens: z.array(z.number().int()),
  finish_reason: finishReasonSchema,
  /** One per generated token, when the request asked for logprobs. */
  logprobs: z.array(logprobEntrySchema).optional(),
});
export type GenerateChoice = z.infer<typeof generateChoiceSchema>;

/**
 * The JSON answer (stream: false): every choice in `choices` (runners older than `n` send only the first
 * choice's text, tokens and finish_reason, kept at the top level), and usage over all of them (the prompt once).
 */
export const generateResponseSchema = generateChoiceSchema.omit({ logprobs: true }).extend({
  usage: generateUsageSchema,
  choices: z.array(generateChoiceSchema).optional(),
  /** The format the runner applied (runners older than JSON mode leave it out). */
  response_format: responseFormatSchema.optional(),
  tool_call_format: saidCallFormatSchema.optional(),
  tool_call_ids: saidCallIdsSchema.optional(),
});
export type GenerateResponse = z.infer<typeof generateResponseSchema>;

/**
 * One SSE `data:` payload (stream: true): deltas, then exactly one done or error. The first delta carries
 * `prompt_tokens` so the API can bill a stream that ends before done (optional: older runners omit it).
 */
export const generateEventSchema = z.discriminatedUnion("type", [
  /** `index`: the choice (absent: 0). The first delta also says the format the runner applies (older runners do not), and the tool calls' format. */
  z.object({
    type: z.literal("delta"),
    index: z.number().int().min(0).optional(),
    text: z.string(),
    token: z.number().int().nullable(),
    prompt_tokens: z.number().int().min(0).optional(),
    response_format: responseFormatSchema.optional(),
    tool_call_format: saidCallFormatSchema.optional(),
    tool_call_ids: saidCallIdsSchema.optional(),
    logprob: logprobEntrySchema.optional(),
  }),
  /** `finish_reasons`: every choice's, by index (absent: the one choice's finish_reason). */
  z.object({ type: z.literal("done"), finish_reason: finishReasonSchema, finish_reasons: z.array(finishReasonSchema).optional(), usage: generateUsageSchema }),
  z.object({ type: z.literal("error"), message: z.string() }),
]);
export type GenerateEvent = z.infer<typeof generateEventSchema>;
