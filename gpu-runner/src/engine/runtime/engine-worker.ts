// Main-thread handle on the engine worker: sends requests, resolves replies, streams tokens. The
// caller's event loop stays free while the worker's ORT sessions compute.
import { Worker } from "node:worker_threads";
import type { GenerateRequest, GenerateResult, GenerateTimings } from "../generate/generator.js";
import type { ModelConfig } from "../model/config.js";
import type { LoadModelOptions } from "./loaded-model.js";
import type { WorkerReply, WorkerRequest } from "./worker-protocol.js";

type Pending = { resolve: (r: WorkerReply) => void; reject: (e: Error) => void; onToken?: (row: number, token: number, text: string) => void };
type Body<K extends WorkerRequest["kind"]> = Omit<Extract<WorkerRequest, { kind: K }>, "id" | "kind">;

export type WorkerModel = { handle: number; config: ModelConfig; hasTokenizer: boolean; slots: number };

export class EngineWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failed: Error | null = null;

  constructor() {
    this.worker = new Worker(new URL("./worker-entry.mjs", import.meta.url));
    this.worker.on("message", (msg: WorkerReply) => this.onMessage(msg));
    this.worker.on("error", (err) => this.failAll(err));
    this.worker.on("exit", (code) => this.failAll(new Error(`engine worker exited with code ${code}`)));
  }

  private onMessage(msg: WorkerReply): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.kind === "token") {
      p.onToken?.(msg.row, msg.token, msg.text);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.kind === "error") p.reject(new Error(msg.message));
    else p.resolve(msg);
  }

  private failAll(err: Error): void {
    this.failed = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private call<K extends WorkerRequest["kind"]>(kind: K, body: Body<K>, onToken?: Pending["onToken"]): Promise<WorkerReply> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onToken });
      this.worker.postMessage({ id, kind, ...body } as unknown as WorkerRequest);
    });
  }

  /** Loads a model folder in the worker; returns its handle and config. */
  async load(dir: string, options: LoadModelOptions = {}): Promise<WorkerModel> {
    const r = await this.call("load", { dir, options });
    if (r.kind !== "loaded") throw new Error(`engine worker: unexpected reply ${r.kind} to load`);
    return { handle: r.model, config: r.config, hasTokenizer: r.hasTokenizer, slots: r.slots };
  }

  /** Puts a PEFT adapter folder into a LoRA slot (null empties it). */
  async loadAdapter(model: number, slot: number, dir: string | null): Promise<void> {
    await this.call("loadAdapter", { model, slot, dir });
  }

  async generate(model: number, requests: GenerateRequest[], onToken?: Pending["onToken"]): Promise<{ results: GenerateResult[]; timings: GenerateTimings }> {
    const r = await this.call("generate", { model, requests, stream: onToken !== undefined }, onToken);
    if (r.kind !== "generated") throw new Error(`engine worker: unexpected reply ${r.kind} to generate`);
    return { results: r.results, timings: r.timings };
  }

  /** logits[b][p] (a Float32Array of the vocabulary) for every position of every row. */
  async logits(model: number, rows: number[][], adapterIndex?: number[]): Promise<Float32Array[][]> {
    const r = await this.call("logits", { model, rows, adapterIndex });
    if (r.kind !== "logits") throw new Error(`engine worker: unexpected reply ${r.kind} to logits`);
    return r.logits.map((flat, b) => rows[b].map((_, t) => flat.subarray(t * r.vocab, (t + 1) * r.vocab)));
  }

  async unload(model: number): Promise<void> {
    await this.call("unload", { model });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }
}
