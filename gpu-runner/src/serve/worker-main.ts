// The serving worker's body: opens the model (decoder session with LoRA slots, tokenizer), tokenizes
// requests and hands them to the continuous-batching scheduler, posting tokens and results back.
import { parentPort } from "node:worker_threads";
import { loadModelConfig } from "../engine/model/load-config.js";
import { PROJECTIONS, frozenMatmulParams } from "../engine/model/names.js";
import { LoadedModel } from "../engine/runtime/loaded-model.js";
import { servingThreads, spinBesideEventLoop } from "../engine/runtime/session.js";
import { loadTokenizer, type TextTokenizer } from "../engine/tokenizer/tokenizer.js";
import { Scheduler } from "./scheduler.js";
import { logprobEntry } from "./logprob-entry.js";
import { hiddenTokens } from "./hidden-tokens.js";
import { CALL_LAYOUTS, autoCallsIn, callTagsOf, keepsCallTags, noCallText, toolCallOpening } from "./tool-call.js";
import { templateMessages, templateTools } from "../engine/tokenizer/template-messages.js";
import { stringsOf } from "../engine/tokenizer/plain-text.js";
import type { FromWorker, ServeSubmit, ServeWorkerInit, ToWorker } from "./worker-protocol.js";

const port = parentPort;
if (!port) throw new Error("serve worker-main.ts must run inside a worker thread");
const send = (m: FromWorker) => port.postMessage(m);

let scheduler: Scheduler | null = null;
/** Requests whose tokens are posted as they come (the others get only their result). */
const streaming = new Set<string>();
let tokenizer: TextTokenizer | null = null;
/** Tokens answers' text leaves out: the special ones; under tool_choice "auto", the template's tool-call tags stay. */
let hidden: { text: ReadonlySet<number>; toolAuto: ReadonlySet<number> } | null = null;
/** What tool_choice "none" bans (noCallText): the template's call tag, taken once per tokenizer. */
let noCall: string | undefined;
/** Longest prompt + max_tokens, as the scheduler enforces it. */
let maxContext = 0;
const SHUTTING_DOWN = "the runner's inference server is shutting down; retry on another runner";
let closing = false;

async function init(o: ServeWorkerInit): Promise<void> {
  const threads = o.threads ?? servingThreads(frozenMatmulParams(await loadModelConfig(o.modelDir)));
  // This thread's runs overlap the HTTP servers on the main thread: spin only with a core to spare.
  const model = await LoadedModel.load(o.modelDir, { slots: o.slots, rank: o.rank, targets: [...PROJECTIONS], threads, spin: o.spin ?? spinBesideEventLoop(threads) });
  tokenizer = await loadTokenizer(o.modelDir);
  const layout = tokenizer?.toolCallFormat ? CALL_LAYOUTS[tokenizer.toolCallFormat] : null;
  noCall = tokenizer ? noCallText(tokenizer.toolCallFormat, tokenizer) : undefined;
  const callTags = tokenizer ? callTagsOf(tokenizer.toolCallFormat, tokenizer.writesCallIds) : [];
  hidden = tokenizer && { text: hiddenTokens(tokenizer), toolAuto: hiddenTokens(tokenizer, layout ? [layout.opening, layout.closing, ...callTags].filter((tag) => tag !== "") : []) };
  // The engine implements neither positions past the model's table nor a sliding window.
  maxContext = Math.min(o.maxContext, model.cfg.maxPositions, model.cfg.slidingWindow ?? Infinity);
  scheduler = new Scheduler(model.session, model.slots, {
    maxBatch: o.maxBatch,
    maxContext,
    policy: o.policy,
    hostAdapters: o.hostAdapters,
    tokenizer,
    events: {
      onToken: (id, token, text, logprob) => {
        if (!streaming.has(id)) return;
        send(logprob && tokenizer ? { kind: "token", id, token, text, logprob: logprobEntry(logprob, tokenizer.tokenBytes) } : { kind: "token", id, token, text });
      },
      onDone: (id, { logprobs, ...result }) => {
        // A stream has sent each token's logprobs already.
        const streamed = streaming.delete(id);
        const tok = tokenizer;
        send({ kind: "done", id, result: logprobs && tok && !streamed ? { ...result, logprobs: logprobs.map((l) => logprobEntry(l, tok.tokenBytes)) } : result });
      },
      onError: (id, message, badAdapter) => {
        streaming.delete(id);
        send({ kind: "error", id, message, invalid: false, ...(badAdapter ? { badAdapter } : {}) });
      },
    },
  });
  if (tokenizer) textBytesLimit = 4 * maxContext * tokenizer.longestTokenBytes;
  send({ kind: "ready", vocab: model.cfg.vocab, hasTokenizer: tokenizer !== null, toolCallFormat: tokenizer?.toolCallFormat ?? null, writesCallIds: tokenizer?.writesCallIds ?? false });
}

/**
 * Text beyond this many UTF-8 bytes cannot fit the context: every token stands for at most `longestTokenBytes`
 * bytes, and the 4× leaves room for normalizers and templates that shorten text. Such text is refused
 * untokenized, since tokenizing a megabyte holds this thread, and every sequence it decodes, for seconds.
 */
let textBytesLimit = Infinity;

function assertTextCanFit(input: ServeSubmit["input"]): void {
  // Every string a chat template may write: contents, tool calls' arguments, the tools' descriptions and schemas.
  const texts = "prompt" in input ? [input.prompt] : "messages" in input ? [...stringsOf(input.messages), ...stringsOf(input.tools ?? [])] : [];
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
  if (bytes > textBytesLimit) {
    const param = "prompt" in input ? "prompt" : "messages";
    throw new Error(`${param}: its ${bytes} bytes of text are more tokens than this server's context of ${maxContext} holds; shorten it`);
  }
}

function tokensOf(req: ServeSubmit): number[] {
  const input = req.input;
  if ("tokens" in input) return input.tokens;
  if (!tokenizer) throw new Error("input: this model has no tokenizer.json; send token ids");
  assertTextCanFit(input);
  if ("messages" in input) {
    const chat = tokenizer.encodeChat(templateMessages(input.messages), { addGenerationPrompt: true, tools: templateTools(input.tools) });
    const opening = req.toolNames && req.format === "tool_call" ? toolCallOpening(tokenizer.toolCallFormat, req.toolNames) : "";
    return opening ? [...chat, ...tokenizer.encode(opening, { addSpecialTokens: false, continues: true })] : chat;
  }
  return tokenizer.encode(input.prompt);
}

/**
 * A prompt that fills the context leaves no room for the answer: refused naming the caller's field (a chat's
 * prompt is its messages, as the template writes them), which the scheduler, seeing only tokens, cannot name.
 */
function assertPromptFits(input: ServeSubmit["input"], n: number): void {
  if (n < maxContext) return;
  const room = `and this server's context of ${maxContext} must also hold the answer; shorten it`;
  if ("messages" in input) throw new Error(`messages: the chat is ${n} tokens (its messages, and the tools it lists, as the chat template writes them), ${room}`);
  throw new Error(`prompt: it is ${n} tokens, ${room}`);
}

function submit(req: ServeSubmit): void {
  if (!scheduler) throw new Error("serve worker: not initialised");
  if (closing) return send({ kind: "error", id: req.id, message: SHUTTING_DOWN, invalid: false });
  try {
    const tokens = tokensOf(req);
    assertPromptFits(req.input, tokens.length);
    if (req.logprobs !== undefined && !tokenizer) throw new Error("logprobs: this model has no tokenizer.json to spell tokens with");
    if (req.stream) {
      streaming.add(req.id);
      send({ kind: "start", id: req.id, promptTokens: tokens.length });
    }
    scheduler.submit({
      id: req.id,
      tokens,
      adapter: req.adapter,
      maxTokens: req.maxTokens,
      fitMaxTokens: req.fitMaxTokens,
      tenant: req.tenant,
      temperature: req.temperature,
      topP: req.topP,
      topK: req.topK,
      frequencyPenalty: req.frequencyPenalty,
      presencePenalty: req.presencePenalty,
      logitBias: req.logitBias,
      seed: req.seed,
      stop: req.stop,
      // A completion's text goes on from its prompt's; a chat's answer starts a turn of its own.
      continuesPrompt: !("messages" in req.input),
      stopTokens: tokenizer?.eosTokenIds ?? [],
      hiddenTokens: keepsCallTags(req) ? hidden?.toolAuto : hidden?.text,
      stream: req.stream,
      logprobs: req.logprobs,
      json: req.json,
      jsonSchema: req.jsonSchema,
      jsonSchemaPath: req.jsonSchemaPath,
      jsonCompact: req.jsonCompact,
      jsonCallId: req.jsonCallId,
      // Tools listed, and an answer in text: tool_choice "none".
      bannedText: (req.format ?? "text") === "text" && "messages" in req.input && req.input.tools?.length ? noCall : undefined,
      // tool_choice "auto" (or a forced call in the template's format): only for a template whose call format is known (generate-submits.ts).
      toolCalls: req.autoCalls ? autoCallsIn(tokenizer?.toolCallFormat ?? null, req.autoCalls, tokenizer?.writesCallIds) : undefined,
    });
  } catch (err) {
    streaming.delete(req.id);
    send({ kind: "error", id: req.id, message: err instanceof Error ? err.message : String(err), invalid: true });
  }
}

port.on("message", (m: ToWorker) => {
  switch (m.kind) {
    case "init":
      init(m.init).catch((err: unknown) => send({ kind: "initError", message: err instanceof Error ? err.message : String(err) }));
      return;
    case "submit":
      submit(m.req);
      return;
    case "cancel":
      streaming.delete(m.id);
      scheduler?.cancel(m.id);
      return;
    case "forget":
      scheduler?.forget(m.adapters);
      return;
    case "stats":
      if (scheduler) send({ kind: "stats", id: m.id, stats: scheduler.stats() });
      return;
    case "close":
      closing = true;
      void (scheduler?.shutdown(SHUTTING_DOWN) ?? Promise.resolve()).finally(() => send({ kind: "closed" }));
      return;
  }
});
