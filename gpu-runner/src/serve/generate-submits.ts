// Turns a /v1/generate request into the serving worker's submits: one per choice, with its seed and grammar.
import type { GenerateRequest } from "../../../api/src/inference/runner-protocol.js";
import type { ToolCallFormat } from "../engine/tokenizer/tool-call-format.js";
import { assertReadableToolCalls, autoCallGrammar, forcedCallInFormat, toolCallGrammar } from "./tool-call.js";
import type { ServeSubmit } from "./worker-protocol.js";

/**
 * One sequence per choice; choice i samples with seed + i, so the choices differ. Without a seed the request
 * draws one at random, so that sampling differs from call to call as in OpenAI's API. `callFormat`: how the
 * model's chat template writes tool calls, which the calls' grammar follows.
 */
export function toSubmits(b: GenerateRequest, id: string, adapter: ServeSubmit["adapter"], callFormat: ToolCallFormat | null): ServeSubmit[] {
  const seed = b.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
  // "auto" reads the calls the model writes: only in a format this server knows (a 400 naming tool_choice).
  if (b.response_format === "tool_auto") assertReadableToolCalls(callFormat);
  // Throws (a 400 naming the tool's parameters) for what the grammar cannot enforce.
  const tools = "messages" in b.input ? (b.input.tools ?? []) : [];
  const forced = b.response_format === "tool_call" ? toolCallGrammar(tools, b.tool_names ?? [], { format: callFormat }) : null;
  // A forced call in the template's own format (not JSON) is held as "auto" holds calls, opened by the prompt.
  const inFormat = forced !== null && forcedCallInFormat(callFormat, b.tool_names ?? []);
  const grammar = forced && !inFormat ? forced : b.json_schema ? { jsonSchema: b.json_schema } : {};
  const auto = b.response_format === "tool_auto" ? autoCallGrammar(tools, b.tool_names ?? [], callFormat!) : null;
  const autoCalls: ServeSubmit["autoCalls"] = inFormat ? { jsonSchema: forced.jsonSchema, jsonSchemaPath: forced.jsonSchemaPath, parallel: false, opened: true } : auto ? { ...auto, parallel: b.parallel_tool_calls } : undefined;
  return Array.from({ length: b.n }, (_, i) => ({
    id: b.n === 1 ? id : `${id}.${i}`,
    input: b.input,
    adapter,
    tenant: b.tenant,
    maxTokens: b.max_tokens,
    fitMaxTokens: b.fit_max_tokens,
    temperature: b.temperature,
    topP: b.top_p,
    topK: b.top_k,
    frequencyPenalty: b.frequency_penalty,
    presencePenalty: b.presence_penalty,
    logitBias: b.logit_bias,
    seed: (seed + i) % 2 ** 32,
    stop: b.stop,
    stream: b.stream,
    logprobs: b.logprobs ?? undefined,
    format: b.response_format,
    ...(b.tool_names ? { toolNames: b.tool_names } : {}),
    json: b.response_format !== "text" && b.response_format !== "tool_auto" && !inFormat,
    ...grammar,
    ...(autoCalls ? { autoCalls } : {}),
  }));
}
