// Every reason a request could never run, found when it is submitted: the client gets an error naming the
// field at once instead of a request that fails after waiting for a row.
import { validateLogprobs } from "../engine/generate/logprobs.js";
import { validateSamplingOptions } from "../engine/generate/sampling.js";
import type { SequenceTokenizer } from "../engine/generate/sequence.js";
import { autoToolCalls, jsonRecognizer, jsonVocabulary } from "../engine/generate/sequence-constraints.js";
import type { SeqRequest } from "./sequence.js";

export type ServerLimits = {
  vocab: number;
  /** Longest prompt + max_tokens a request may ask for. */
  maxContext: number;
  /** The session has LoRA slots (it can serve adapters). */
  lora: boolean;
  tokenizer: SequenceTokenizer | null;
};

/** Throws, naming the field, when `req` can never run on this server; a `fitMaxTokens` request gets its maxTokens shortened to fit first. */
export function checkRequest(req: SeqRequest, limits: ServerLimits): void {
  const { vocab: V, maxContext, tokenizer } = limits;
  validateSamplingOptions({ temperature: req.temperature ?? 0, topK: req.topK, topP: req.topP });
  validateLogprobs(req.logprobs);
  if (req.tokens.length === 0) throw new Error("prompt: it encodes to no tokens; send a non-empty prompt");
  for (const t of req.tokens) if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`prompt: token ${t} is outside the vocabulary 0..${V - 1}`);
  for (const t of Object.keys(req.logitBias ?? {})) {
    if (!/^(0|[1-9]\d*)$/.test(t) || Number(t) >= V) throw new Error(`logit_bias: token ${t} is outside the vocabulary 0..${V - 1}`);
  }
  if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new Error(`max_tokens=${req.maxTokens} must be an integer ≥ 1`);
  if (req.tokens.length >= maxContext) {
    throw new Error(`prompt: it is ${req.tokens.length} tokens, and this server's context of ${maxContext} must also hold the answer; shorten it`);
  }
  if (req.fitMaxTokens) req.maxTokens = Math.min(req.maxTokens, maxContext - req.tokens.length);
  if (req.tokens.length + req.maxTokens > maxContext) {
    throw new Error(`max_tokens: prompt (${req.tokens.length} tokens) + max_tokens (${req.maxTokens}) exceeds this server's context of ${maxContext}; shorten one`);
  }
  if (req.adapter && !limits.lora) throw new Error("model: this server was started without LoRA slots; it serves base models only");
  if (req.stop?.length && !tokenizer) throw new Error("stop: stop strings need a tokenizer (tokenizer.json in the model folder)");
  if (req.json || req.jsonSchema) {
    // Throw now, naming the field, without a tokenizer that spells tokens or for a schema it cannot enforce.
    jsonVocabulary(tokenizer, new Set());
    jsonRecognizer(req);
  }
  if (req.toolCalls) autoToolCalls(tokenizer, new Set(), req.toolCalls);
}
