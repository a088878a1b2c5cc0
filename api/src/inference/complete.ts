// The inference flow both OpenAI endpoints share: resolve the caller's model (another tenant's is a 404),
// pick runners, proxy the generation, meter prompt and completion tokens once, and shape the answer
// (JSON, or SSE chunks passed through as they arrive, ending with usage and [DONE]).
import type { Context } from "hono";
import { findTenantModel } from "../adapters/models.js";
import type { AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import { meterInference } from "./meter.js";
import { chunkObject, completionObject, responseId, type CompletionKind, type Finish } from "./openai.js";
import { callRunners } from "./proxy.js";
import { generateResponseSchema, type GenerateRequestInput, type GenerateUsage } from "./runner-protocol.js";
import { candidateRunners } from "./runners.js";
import { runnerEvents, sseData } from "./sse.js";

export type CompletionCall = {
  kind: CompletionKind;
  model: string;
  input: GenerateRequestInput["input"];
  max_tokens: number;
  temperature: number;
  top_p: number;
  top_k: number;
  seed?: number;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
};

/** Maps a runner's 4xx error answer onto our envelope. */
async function runnerError(res: Response): Promise<ApiError> {
  const body = (await res.json().catch(() => null)) as { error?: { message?: string; param?: string | null } } | null;
  const message = body?.error?.message ?? `runner answered ${res.status}`;
  const param = body?.error?.param ?? null;
  // The runner speaks in its own field names; name the caller's.
  const callerParam = param === "input" ? null : param?.replace(/^input\./, "") ?? null;
  return new ApiError("invalid_request", message, callerParam);
}

/** Runs one completion for the authenticated tenant and returns the HTTP answer. */
export async function runCompletion(c: Context<AppEnv>, call: CompletionCall): Promise<Response> {
  const { db, config, now } = c.var.deps;
  const tenantId = c.var.tenant.tenantId;
  const requestId = c.var.requestId;
  const found = await findTenantModel(db, tenantId, call.model);
  if (!found) throw new ApiError("not_found", `model '${call.model}' not found; list yours with GET /v1/models`, "model");
  if (!config.TUNESERVE_RUNNER_TOKEN) throw new ApiError("unavailable", "inference is disabled: TUNESERVE_RUNNER_TOKEN is not set");
  const baseModel = found.base.id;
  const adapter = found.kind === "adapter" ? found.adapter.modelId : null;
  const targets = await candidateRunners(db, { baseModel, adapter, now: now(), freshSeconds: config.TUNESERVE_LEASE_SECONDS });
  const { response } = await callRunners(
    targets,
    { request_id: requestId, model: baseModel, adapter, input: call.input, max_tokens: call.max_tokens, temperature: call.temperature, top_p: call.top_p, top_k: call.top_k, seed: call.seed, stop: call.stop, stream: call.stream },
    config.TUNESERVE_RUNNER_TOKEN,
  );
  if (!response.ok) throw await runnerError(response);
  const meta = { id: responseId(call.kind, requestId), created: now(), model: call.model };
  const meter = (usage: GenerateUsage) => meterInference(db, { tenantId, requestId, model: call.model, usage, now: now() });

  if (!call.stream) {
    const parsed = generateResponseSchema.safeParse(await response.json());
    if (!parsed.success) throw new ApiError("internal_error", "the runner's answer did not match the protocol; quote the request_id");
    const r = parsed.data;
    await meter(r.usage);
    return c.json(completionObject(call.kind, meta, r.text, r.finish_reason, r.usage), 200);
  }

  const enc = new TextEncoder();
  if (!response.body) throw new ApiError("internal_error", "the runner sent an empty stream");
  const upstream = runnerEvents(response.body);
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      let first = true;
      let reason: Finish | null = null;
      try {
        for await (const e of upstream.events) {
          if (e.type === "delta") {
            if (!e.text && !first) continue;
            controller.enqueue(sseData(enc, chunkObject(call.kind, meta, { text: e.text, first })));
            first = false;
          } else if (e.type === "done") {
            reason = e.finish_reason;
            // Metered before the last chunks go out, so a client that has seen usage can query it.
            await meter(e.usage);
            controller.enqueue(sseData(enc, chunkObject(call.kind, meta, { reason })));
            if (call.includeUsage) controller.enqueue(sseData(enc, chunkObject(call.kind, meta, { usage: e.usage })));
          } else {
            controller.enqueue(sseData(enc, { error: { code: "generation_failed", message: e.message, param: null, request_id: requestId } }));
          }
        }
        if (reason) controller.enqueue(sseData(enc, "[DONE]"));
        controller.close();
      } catch (err) {
        controller.error(err);
      }
    },
    cancel() {
      void upstream.cancel();
    },
  });
  return new Response(stream, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Request-Id": requestId } });
}
