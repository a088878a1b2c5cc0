// Messages between the main thread and the engine worker (which owns the ORT sessions, because
// session.run blocks its thread). Typed-array payloads travel as transferred ArrayBuffers.
import type { GenerateRequest, GenerateResult, GenerateTimings } from "../generate/generator.js";
import type { ModelConfig } from "../model/config.js";
import type { LoadModelOptions } from "./loaded-model.js";

export type WorkerRequest =
  | { id: number; kind: "load"; dir: string; options: LoadModelOptions }
  | { id: number; kind: "loadAdapter"; model: number; slot: number; dir: string | null }
  | { id: number; kind: "generate"; model: number; requests: GenerateRequest[]; stream: boolean }
  | { id: number; kind: "logits"; model: number; rows: number[][]; adapterIndex?: number[] }
  | { id: number; kind: "unload"; model: number };

export type WorkerReply =
  | { id: number; kind: "error"; message: string }
  | { id: number; kind: "loaded"; model: number; config: ModelConfig; hasTokenizer: boolean; slots: number }
  | { id: number; kind: "done" }
  | { id: number; kind: "token"; row: number; token: number; text: string }
  | { id: number; kind: "generated"; results: GenerateResult[]; timings: GenerateTimings }
  /** logits[b] is a flat [T_b·V] buffer. */
  | { id: number; kind: "logits"; logits: Float32Array[]; vocab: number };
