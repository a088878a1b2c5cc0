// Which format a chat template writes an assistant's tool calls in, read from the template's text: the formats
// whose calls the runner can hold to the tools' grammar and the API can read back (tool_choice "auto"; the
// formats are the runner protocol's tool_call_format).
import { NAMED_CALL_TAGS, type ToolCallFormat } from "../../../../api/src/inference/runner-protocol.js";

export type { ToolCallFormat };

/**
 * The format `template` writes calls in, or null for one this server cannot read. Hermes: `<tool_call>` and
 * `"arguments"`, but not the XML calls some templates put within the same tag (`<function=…>`, Qwen3-Coder).
 * Llama 3.1: `"parameters": ` written beside the call's name (`tool_call.name`) or tool answers in `ipython`
 * turns, and no `<tool_call>` (whose blocks are Hermes's, whatever key they use), nor calls written as
 * Functionary's are (FUNCTIONARY_CALLS), whose templates also answer tools in ipython turns and may keep Meta's
 * "parameters" instructions. Mistral: `[TOOL_CALLS]` (a
 * JSON array of calls after it, as Mistral's v3 template writes), or with `[ARGS]` the `[TOOL_CALLS]name[ARGS]{…}`
 * calls of newer ones (tokenizer v11+; `[CALL_ID]id` before [ARGS] where the template writes ids).
 */
export function toolCallFormatOf(template: string): ToolCallFormat | null {
  if (template.includes("<tool_call>")) return template.includes('"arguments"') && !template.includes("<function=") ? "hermes" : null;
  if (template.includes("[TOOL_CALLS]")) return template.includes("[ARGS]") ? "mistral_v11" : "mistral";
  if (FUNCTIONARY_CALLS.some((tag) => template.includes(tag))) return null;
  if (template.includes('"parameters": ') && (template.includes("tool_call.name") || template.includes("ipython"))) return "llama3_json";
  return null;
}

/**
 * How Functionary's Llama 3-based templates write a call, which no format here reads: `<function=name>{…}</function>`
 * (v3.1, as Qwen3-Coder's XML calls open too) and `>>>name` then the arguments (v3.2).
 */
const FUNCTIONARY_CALLS = ["<function=", ">>>"];

/**
 * Whether `template` writes each call's id in Mistral's newer format (`[CALL_ID]id` between the name and [ARGS]):
 * only then may a model's call hold one, as a model trained on a template without ids never wrote one.
 */
export const writesCallIds = (template: string): boolean => template.includes(NAMED_CALL_TAGS.callId);
