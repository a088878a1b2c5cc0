// What the serve path asks of one sequence: the engine's sequence request plus its id, its adapter and
// whether its text streams. The per-token logic is the engine's Sequence (engine/generate/sequence.ts).
import type { SequenceRequest, SequenceResult } from "../engine/generate/sequence.js";

export type { FinishReason } from "../engine/generate/sequence.js";

export type SeqRequest = SequenceRequest & {
  id: string;
  /** The adapter (a PEFT folder on local disk) or null for the base model. */
  adapter: { id: string; dir: string } | null;
  /** Text is wanted token by token (streaming); otherwise, without stop strings, it is decoded once at the end. */
  stream?: boolean;
  /** maxTokens is a default: shortened to fit the context after the prompt instead of refused. */
  fitMaxTokens?: boolean;
  /** The caller's tenant: tenants take turns for free rows (batch.ts inTurns). */
  tenant?: string;
};

export type SeqResult = SequenceResult;
