// Messages between the inference server (main thread) and its serving worker, which owns the ORT
// session and the continuous-batching scheduler (session.run blocks its thread).
import type { BatchingPolicy } from "./batch.js";
import type { GenerateRequest, LogprobEntry, ResponseFormat } from "../../../api/src/inference/runner-protocol.js";
import type { SchedulerStats, SeqResult } from "./scheduler.js";
import type { ToolCallFormat } from "../engine/tokenizer/tool-call-format.js";

export type ServeWorkerInit = {
  modelDir: string;
  maxBatch: number;
  maxContext: number;
  /** LoRA slots in the session, slot 0 (no adapter) included. */
  slots: number;
  /** Slot rank: adapters with a larger r are refused. */
  rank: number;
  policy: BatchingPolicy;
  hostAdapters: number;
  /** ORT intra-op threads (default: servingThreads in runtime/session.ts, 1 for small models, else 2). */
  threads?: number;
  /** Let ORT's threads spin within runs (default: spinBesideEventLoop in runtime/session.ts). */
  spin?: boolean;
};

/** A prompt, chat messages (with the tools their template lists) or token ids, as the runner protocol has them. */
export type SubmitInput = GenerateRequest["input"];

export type ServeSubmit = {
  id: string;
  input: SubmitInput;
  adapter: { id: string; dir: string } | null;
  maxTokens: number;
  fitMaxTokens?: boolean;
  /** The caller's tenant, for taking turns (batch.ts inTurns). */
  tenant?: string;
  temperature: number;
  topP: number;
  topK: number;
  /** OpenAI's penalties (default 0, off). */
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** Token id (as a string, as in JSON) → bias added to its logit at every step. */
  logitBias?: Record<string, number>;
  seed?: number;
  stop: string[];
  /** Post every token back (streaming); otherwise only the result. */
  stream: boolean;
  /** Each token's logprob with this many alternatives (0..20); undefined: off. */
  logprobs?: number;
  /** JSON mode: the answer is one JSON object. */
  json?: boolean;
  /** Structured Outputs or a forced tool call: the object follows this JSON Schema. */
  jsonSchema?: Record<string, unknown>;
  /** Where jsonSchema came from, for its errors (default response_format.json_schema.schema). */
  jsonSchemaPath?: string;
  /** At most one space between JSON tokens (a forced tool call). */
  jsonCompact?: boolean;
  /** A forced call whose "id" member, Mistral's v3 templates write, holds 9 letters or digits. */
  jsonCallId?: boolean;
  /** A forced tool call's tools (response_format tool_call): a template of a known format gets the call opened for the model. */
  toolNames?: string[];
  /**
   * tool_choice "auto" with a grammar on the calls the model writes in its template's format (tool-call.ts); or,
   * `opened`, a forced call in that format after the opening tag the prompt ends with (forcedCallInFormat).
   */
  autoCalls?: { jsonSchema: Record<string, unknown>; jsonSchemaPath: string; parallel: boolean; opened?: boolean };
  /** The response format these settings apply, said back to the API (default text). */
  format?: ResponseFormat;
};

/** A finished generation, its logprobs (if asked for) spelled out as text and bytes. */
export type ServeResult = Omit<SeqResult, "logprobs"> & { logprobs?: LogprobEntry[] };

export type ToWorker =
  | { kind: "init"; init: ServeWorkerInit }
  | { kind: "submit"; req: ServeSubmit }
  | { kind: "cancel"; id: string }
  /** Adapters deleted through the API: drop their parsed copies and slots (those no running row uses). */
  | { kind: "forget"; adapters: string[] }
  | { kind: "stats"; id: string }
  /** Stop after the current step, failing the requests left; answered by `closed`. */
  | { kind: "close" };

export type FromWorker =
  /**
   * `toolCallFormat`: how the model's chat template writes tool calls (null: none this server reads, or no template);
   * `writesCallIds`: whether it writes each call's id (mistral_v11's `[CALL_ID]`).
   */
  | { kind: "ready"; vocab: number; hasTokenizer: boolean; toolCallFormat: ToolCallFormat | null; writesCallIds: boolean }
  | { kind: "initError"; message: string }
  /** A streaming request was tokenized: sent before its first token, so a stream cut short can still bill the prompt. */
  | { kind: "start"; id: string; promptTokens: number }
  | { kind: "token"; id: string; token: number | null; text: string; logprob?: LogprobEntry }
  | { kind: "done"; id: string; result: ServeResult }
  /** `invalid`: the request itself is wrong (a 400); otherwise the server failed it. `badAdapter`: its adapter's files would not load. */
  | { kind: "error"; id: string; message: string; invalid: boolean; badAdapter?: string }
  | { kind: "stats"; id: string; stats: SchedulerStats }
  /** The scheduler stopped between steps: no session.run is in progress, so the thread can be terminated safely. */
  | { kind: "closed" };
