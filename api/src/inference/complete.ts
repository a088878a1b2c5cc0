// The inference flow both OpenAI endpoints share: resolve the caller's model (another tenant's is a 404),
// pick runners, proxy the generation, meter prompt and completion tokens once, and shape the answer
// (JSON, or SSE chunks passed through as they arrive, ending with usage and [DONE]: stream.ts).
import { runnerPredates, runnerSkew, warnUnknownCallFormat } from "./runner-skew.js";
import type { Context } from "hono";
import { findCallableModel, modelNotFound, peftFilesOf } from "../jobs/checkpoint-models.js";
import type { AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import { currentSummary } from "../lib/model-files.js";
import { assertCanRead } from "../lib/model-text.js";
import { meterInference } from "./meter.js";
import { completionObject, responseId, type Choice, type CompletionKind } from "./openai-response.js";
import { callRunners } from "./proxy.js";
import { generateResponseSchema, isKnownCallFormat, type GenerateRequestInput, type GenerateChoice, type GenerateResponse, type GenerateUsage, type ResponseFormat } from "./runner-protocol.js";
import { candidateRunners } from "./runners.js";
import { keepRunning } from "../lib/keep-running.js";
import { sha256Hex } from "../lib/hash.js";
import { claimKey, forgetKey, holdKey, parseIdempotencyKey, settleKey } from "../lib/idempotency-keys.js";
import { assertTokensLeft } from "../quotas/limits.js";
import { completionHash, meterKeyed, storable, storedCompletion, type StoredCompletion, type StoredRow } from "./idempotency.js";
import { replayCompletion } from "./replay.js";
import { streamCompletion } from "./stream.js";
import { saidCallFormat, withCallFormat, type ToolCallShape } from "./tool-calls.js";

export type CompletionCall = {
  kind: CompletionKind;
  model: string;
  input: GenerateRequestInput["input"];
  max_tokens: number;
  /** max_tokens is the endpoint's default (the caller set none): the runner shortens it to fit the context. */
  maxTokensDefault?: boolean;
  temperature: number;
  top_p: number;
  top_k: number;
  frequency_penalty: number;
  presence_penalty: number;
  logit_bias: Record<string, number>;
  seed?: number;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  /** Alternatives per token with logprobs (0..20), or null: no logprobs. */
  logprobs: number | null;
  /** Choices (completions of the prompt). */
  n: number;
  /** Chat's response_format: text, JSON mode, or Structured Outputs with `jsonSchema`. */
  format: ResponseFormat;
  jsonSchema: Record<string, unknown> | null;
  /** Completions' echo: this prompt text starts every choice's text. */
  echo: string | null;
  /** Completions' best_of (≥ n): choices generated, of which the n likeliest are answered. */
  bestOf: number;
  /** Chat's forced tool call (format tool_call): the tools it may call; null or absent otherwise. */
  toolCall?: ToolCallShape | null;
};

/** Log probability per token of a choice (its score for best_of); a choice without tokens ranks last. */
const perToken = (ch: GenerateChoice) => (ch.logprobs?.length ? ch.logprobs.reduce((s, e) => s + e.logprob, 0) / ch.logprobs.length : -Infinity);

/** The n choices with the highest log probability per token (best_of), in that order. */
function bestOf(call: CompletionCall, got: GenerateChoice[]): GenerateChoice[] {
  if (call.bestOf === call.n) return got;
  return [...got].sort((a, b) => perToken(b) - perToken(a)).slice(0, call.n);
}

/** The runner's choices, as asked for: a runner that predates `n`, logprobs or JSON mode and left them out is an error. */
function choicesOf(call: CompletionCall, r: GenerateResponse): Choice[] {
  if (call.format !== "text" && r.response_format !== call.format) throw runnerSkew(runnerPredates.format(call.format));
  const got: GenerateChoice[] = r.choices ?? [{ text: r.text, tokens: r.tokens, finish_reason: r.finish_reason }];
  if (got.length !== call.bestOf) throw runnerSkew(runnerPredates.choices(got.length, call.bestOf));
  const logprobsAsked = call.logprobs !== null || call.bestOf > call.n;
  return bestOf(call, got).map((ch) => {
    if (logprobsAsked && !ch.logprobs) throw runnerSkew(runnerPredates.logprobs);
    return { text: (call.echo ?? "") + ch.text, finish_reason: ch.finish_reason, logprobs: call.logprobs === null ? null : (ch.logprobs ?? null) };
  });
}

/**
 * The most tokens (n × max_tokens) one answer with logprobs may hold: an entry per token with up to 20
 * alternatives is about 1 KB of JSON, which the API (a Worker has 128 MB) parses and may store.
 */
export const MAX_LOGPROB_TOKENS = 8192;

/** A runner refused the request as invalid (a 400 naming the caller's field): nothing ran. */
class RunnerRefusal extends ApiError {}

/**
 * Maps a runner's 4xx error answer onto our envelope. The API only sends what the protocol takes, so a runner
 * that does not know a field or a value of it (zod's "Unrecognized key", an enum it lacks) predates the API.
 */
async function runnerError(res: Response, kind: CompletionKind): Promise<ApiError> {
  const body = (await res.json().catch(() => null)) as { error?: { message?: string; param?: string | null } } | null;
  const message = body?.error?.message ?? `runner answered ${res.status}`;
  const param = body?.error?.param ?? null;
  if (/Unrecognized key|Invalid option/.test(message)) return runnerSkew(`the runner does not take this request (${message}): it predates this API; upgrade the runners`);
  // The runner speaks in its own field names; name the caller's (a chat's prompt is its messages).
  const callerParam = param === "input" ? null : param === "prompt" && kind === "chat" ? "messages" : param?.replace(/^input\./, "") ?? null;
  return new RunnerRefusal("invalid_request", message, callerParam);
}

/**
 * Runs one completion for the authenticated tenant and returns the HTTP answer. With an Idempotency-Key
 * (lib/idempotency-keys.ts, idempotency.ts) a retry of a finished request is answered from the stored
 * result, and billing counts each key once.
 */
export async function runCompletion(c: Context<AppEnv>, call: CompletionCall): Promise<Response> {
  const { db, config, now } = c.var.deps;
  const tenantId = c.var.tenant.tenantId;
  const requestId = c.var.requestId;
  const key = parseIdempotencyKey(c.req.header("Idempotency-Key"));
  if ((call.logprobs !== null || call.bestOf > call.n) && call.bestOf * call.max_tokens > MAX_LOGPROB_TOKENS) {
    const what = call.bestOf > call.n ? `best_of × max_tokens (${call.bestOf} × ${call.max_tokens})` : `n × max_tokens (${call.n} × ${call.max_tokens})`;
    throw new ApiError("invalid_request", `with logprobs or best_of, ${what} may be at most ${MAX_LOGPROB_TOKENS}: each token's entry is part of the runner's answer`, "max_tokens");
  }
  const found = await findCallableModel(db, tenantId, call.model);
  if (!found) throw modelNotFound(call.model, `model '${call.model}' not found; list yours with GET /v1/models`);
  assertCanRead(call.model, await currentSummary(c.var.deps, found.base, found.summary), call.input);
  if (!config.TUNESERVE_RUNNER_TOKEN) throw new ApiError("unavailable", "inference is disabled: TUNESERVE_RUNNER_TOKEN is not set");
  if (key === null) return generate(c, call, found, null);
  const ref = { tenantId, key, requestId };
  const claim = await claimKey<StoredRow>(db, { ...ref, hash: await completionHash(call), now: now() });
  if (claim.kind === "replay") return replayCompletion(c, call, storedCompletion(claim.result));
  // A retry of an attempt that did not finish runs again and pays only for tokens beyond the earlier ones:
  // without a seed of the caller's, the key's own makes it generate the same tokens, not a new answer for free.
  if (call.seed === undefined) call = { ...call, seed: await keySeed(tenantId, key) };
  const release = holdKey(db, ref, now);
  const settle = (result: StoredCompletion | null) => {
    release();
    return settleKey(db, { ...ref, result: storable(result), now: now() });
  };
  // Registered with waitUntil at once: on a Worker, a client that disconnects would otherwise cancel the
  // attempt before it settles its key, and retries would wait for the key to go stale.
  const attempt = generate(c, call, found, { ref, settle }).catch(async (err: unknown) => {
    // A request the runner refused ran nothing: its key is let go, so the corrected request may use it.
    const refused = err instanceof RunnerRefusal;
    const ended = refused ? (release(), forgetKey(db, ref)) : settle(null);
    await ended.catch((e: unknown) => console.error(`[${requestId}] settling its Idempotency-Key failed:`, e));
    throw err;
  });
  keepRunning(c, attempt.catch(() => undefined));
  return attempt;
}

/** The sampling seed of a keyed request that names none: the same for every attempt under the key. */
async function keySeed(tenantId: string, key: string): Promise<number> {
  return Number.parseInt((await sha256Hex(`${tenantId}\n${key}`)).slice(0, 8), 16);
}

/** An attempt under an Idempotency-Key: billed under the key, and settled when it ends. */
type Keyed = { ref: { tenantId: string; key: string; requestId: string }; settle: (result: StoredCompletion | null) => Promise<void> };

/** Proxies the generation to a runner, meters it and shapes the answer; `keyed` settles an Idempotency-Key. */
async function generate(c: Context<AppEnv>, call: CompletionCall, found: NonNullable<Awaited<ReturnType<typeof findCallableModel>>>, keyed: Keyed | null): Promise<Response> {
  const { db, config, now } = c.var.deps;
  const tenantId = c.var.tenant.tenantId;
  const requestId = c.var.requestId;
  const baseModel = found.base.id;
  const adapter = found.kind === "base" ? null : peftFilesOf(found).modelId;
  await assertTokensLeft(c.var.deps, c.var.tenant);
  const targets = await candidateRunners(db, { baseModel, adapter, now: now(), freshSeconds: config.TUNESERVE_LEASE_SECONDS });
  const { response } = await callRunners(
    targets,
    { request_id: requestId, model: baseModel, adapter, tenant: tenantId, input: call.input, max_tokens: call.max_tokens, ...(call.maxTokensDefault ? { fit_max_tokens: true } : {}), temperature: call.temperature, top_p: call.top_p, top_k: call.top_k, frequency_penalty: call.frequency_penalty, presence_penalty: call.presence_penalty, logit_bias: call.logit_bias, seed: call.seed, stop: call.stop, stream: call.stream, logprobs: call.bestOf > call.n ? (call.logprobs ?? 0) : call.logprobs, n: call.bestOf, response_format: call.format, json_schema: call.jsonSchema, tool_names: call.toolCall?.names ?? null, ...(call.toolCall?.single ? { parallel_tool_calls: false } : {}) },
    config.TUNESERVE_RUNNER_TOKEN!,
  );
  if (!response.ok) throw await runnerError(response, call.kind);
  const meta = { id: responseId(call.kind, requestId), created: now(), model: call.model };
  const meter = (usage: GenerateUsage) =>
    keyed ? meterKeyed(db, { ...keyed.ref, model: call.model, usage, now: now() }) : meterInference(db, { tenantId, requestId, model: call.model, usage, now: now() });
  const settle = keyed?.settle;

  if (!call.stream) {
    const answer = await response.json().catch((err: unknown) => {
      console.error(`[${requestId}] reading the runner's answer failed:`, err);
      throw new ApiError("unavailable", "the runner broke off its answer; retry, or quote the request_id if it persists", null, { "Retry-After": "1" });
    });
    const parsed = generateResponseSchema.safeParse(answer);
    if (!parsed.success) throw new ApiError("internal_error", "the runner's answer did not match the protocol; quote the request_id");
    const r = parsed.data;
    // An answer that lacks what was asked (the runner predates it) is the operator's to mend: not billed.
    const choices = choicesOf(call, r);
    // The runner has done the work: bill it even if the client is gone by now.
    const metered = meter(r.usage);
    keepRunning(c, metered);
    await metered;
    if (call.toolCall && r.tool_call_format && !isKnownCallFormat(r.tool_call_format)) warnUnknownCallFormat(requestId, r.tool_call_format);
    // Billed: a failure to store the answer for retries must not fail it (a retry then waits for the key to go stale).
    const callFormat = saidCallFormat(r);
    const settled = settle?.({ id: meta.id, created: meta.created, usage: r.usage, choices, ...callFormat }).catch((err: unknown) => console.error(`[${requestId}] settling its Idempotency-Key failed:`, err));
    if (settled) keepRunning(c, settled);
    await settled;
    return c.json(completionObject(call.kind, meta, choices, r.usage, withCallFormat(call.toolCall ?? null, r.tool_call_format, r.tool_call_ids)), 200);
  }

  if (!response.body) throw new ApiError("internal_error", "the runner sent an empty stream");
  return streamCompletion(c, response.body, { kind: call.kind, meta, requestId, includeUsage: call.includeUsage, logprobs: call.logprobs !== null, n: call.n, format: call.format, echo: call.echo, tools: call.toolCall ?? null, meter, settle });
}
