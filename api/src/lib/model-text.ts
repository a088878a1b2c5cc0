// What a base model can read and write as text: a tokenizer (tokenizer.json) and a chat template
// (tokenizer_config.json's chat_template, or chat_template.jinja). Noted at registration, so that a job or a
// request the model cannot serve is refused at once, naming the missing file, instead of failing on a runner.
import { ApiError } from "../errors.js";
import type { ModelSummary } from "./model-shapes.js";

export type ModelText = { has_tokenizer: boolean; has_chat_template: boolean };

/** A model's files by name (a blob prefix or a local folder). */
export type ModelFiles = { read(name: string): Promise<Uint8Array | null>; exists(name: string): Promise<boolean> };

/** Whether the folder has tokenizer.json and a chat template where the engine looks for them (tokenizer.ts's loadTokenizer). */
export async function readModelText(files: ModelFiles): Promise<ModelText> {
  const has_tokenizer = await files.exists("tokenizer.json");
  const bytes = await files.read("tokenizer_config.json");
  let config: unknown = null;
  if (bytes) {
    try {
      config = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new ApiError("invalid_request", `tokenizer_config.json is not valid JSON (${(e as Error).message}); fix or remove it`, "source");
    }
  }
  const template = (config as { chat_template?: unknown } | null)?.chat_template;
  const inConfig = (typeof template === "string" && template.length > 0) || (Array.isArray(template) && template.length > 0);
  return { has_tokenizer, has_chat_template: inConfig || (await files.exists("chat_template.jinja")) };
}

const templateHint = "tokenizer_config.json has no chat_template and there is no chat_template.jinja";

/** Refuses training on a model that cannot render the file's records (a format of files/line-shapes.ts). */
export function assertCanTrainOn(model: string, summary: ModelSummary, format: string | null, param: string): void {
  if (summary.has_tokenizer === false) {
    throw new ApiError("invalid_request", `base model '${model}' has no tokenizer.json, so it cannot read training text; register a model folder that has one`, param);
  }
  if (summary.has_chat_template === false && (format === "chat" || format === "preference")) {
    throw new ApiError("invalid_request", `base model '${model}' cannot render ${format} records: ${templateHint}; train it on prompt/completion or text lines, or add a chat template to the model`, param);
  }
}

/** Refuses a generation the model cannot read: text without a tokenizer, messages without a chat template. */
export function assertCanRead(model: string, summary: ModelSummary, input: { prompt: string } | { messages: unknown } | { tokens: number[] }): void {
  if ("tokens" in input) return;
  const param = "prompt" in input ? "prompt" : "messages";
  if (summary.has_tokenizer === false) {
    throw new ApiError("invalid_request", `model '${model}' has no tokenizer.json, so it cannot read text; register a model folder that has one`, param);
  }
  if (param === "messages" && summary.has_chat_template === false) {
    throw new ApiError("invalid_request", `model '${model}' has no chat template (${templateHint}); use /v1/completions with a prompt instead`, "messages");
  }
}
