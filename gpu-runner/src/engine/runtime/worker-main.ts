// The engine worker's body: keeps loaded models (sessions, LoRA slots, tokenizer) and answers requests
// from the main thread one at a time.
import { parentPort } from "node:worker_threads";
import { generate } from "../generate/generator.js";
import { loadLoraAdapter } from "../lora/peft.js";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer.js";
import { LoadedModel } from "./loaded-model.js";
import { computeLogits } from "./logits.js";
import type { WorkerReply, WorkerRequest } from "./worker-protocol.js";

const port = parentPort;
if (!port) throw new Error("worker-main.ts must run inside a worker thread");

const models = new Map<number, { model: LoadedModel; tokenizer: TextTokenizer | null }>();
let nextModel = 1;
const send = (msg: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

function get(id: number) {
  const m = models.get(id);
  if (!m) throw new Error(`engine worker: no model with handle ${id} (already unloaded?)`);
  return m;
}

async function handle(req: WorkerRequest): Promise<void> {
  switch (req.kind) {
    case "load": {
      const model = await LoadedModel.load(req.dir, req.options);
      const tokenizer = await loadTokenizer(req.dir);
      const handleId = nextModel++;
      models.set(handleId, { model, tokenizer });
      send({ id: req.id, kind: "loaded", model: handleId, config: model.cfg, hasTokenizer: tokenizer !== null, slots: model.slots?.spec.slots ?? 0 });
      return;
    }
    case "loadAdapter": {
      const { model } = get(req.model);
      if (!model.slots) throw new Error("engine worker: this model was loaded without LoRA slots; load it with slots ≥ 2");
      model.slots.load(req.slot, req.dir ? await loadLoraAdapter(req.dir, model.cfg) : null);
      send({ id: req.id, kind: "done" });
      return;
    }
    case "generate": {
      const { model, tokenizer } = get(req.model);
      const { results, timings } = await generate(model.session, req.requests, {
        loraFeeds: model.loraFeeds(),
        tokenizer,
        onToken: req.stream ? (row, token, text) => send({ id: req.id, kind: "token", row, token, text }) : undefined,
      });
      send({ id: req.id, kind: "generated", results, timings });
      return;
    }
    case "logits": {
      const { model } = get(req.model);
      const per = await computeLogits(model.session, req.rows, { adapterIndex: req.adapterIndex, loraFeeds: model.loraFeeds() });
      const V = model.cfg.vocab;
      const flat = per.map((row) => {
        const out = new Float32Array(row.length * V);
        row.forEach((p, t) => out.set(p, t * V));
        return out;
      });
      send({ id: req.id, kind: "logits", logits: flat, vocab: V }, flat.map((f) => f.buffer as ArrayBuffer));
      return;
    }
    case "unload": {
      const m = models.get(req.model);
      models.delete(req.model);
      await m?.model.release();
      send({ id: req.id, kind: "done" });
      return;
    }
  }
}

// One request at a time: ORT runs block this thread anyway, and ordering stays predictable.
let queue = Promise.resolve();
port.on("message", (req: WorkerRequest) => {
  queue = queue.then(() =>
    handle(req).catch((err: unknown) => send({ id: req.id, kind: "error", message: err instanceof Error ? err.message : String(err) })),
  );
});
