// Writes a generation's answer: the choices as one JSON body, or as SSE events token by token.
import type { Context } from "hono";
import type { GenerateChoice, GenerateEvent, GenerateResponse, LogprobEntry, ResponseFormat } from "../../../api/src/inference/runner-protocol.js";
import { failure } from "./error-answers.js";
import { SettledDeltas, type TokenDelta } from "./settled-deltas.js";
import type { ToolCallFormat } from "../engine/tokenizer/tool-call-format.js";
import type { ServeWorker } from "./worker-client.js";
import type { ServeResult, ServeSubmit } from "./worker-protocol.js";

/**
 * The response format the runner applies, said back so that the API can tell it from an older runner's silence;
 * with tool calls, the format the template writes them in, which the API reads them by (and with mistral_v11 whether
 * the template writes call ids, as the grammar lets a call hold one only then).
 */
export function formatOf(submits: ServeSubmit[], worker: Pick<ServeWorker, "toolCallFormat" | "writesCallIds">): { response_format: ResponseFormat; tool_call_format?: ToolCallFormat; tool_call_ids?: boolean } {
  const format = submits[0].format ?? "text";
  const calls = (format === "tool_auto" || format === "tool_call") && worker.toolCallFormat;
  const ids = calls === "mistral_v11" ? { tool_call_ids: worker.writesCallIds } : {};
  return { response_format: format, ...(calls ? { tool_call_format: calls, ...ids } : {}) };
}

/** Usage over all choices: the prompt once (every choice read the same one), the completions summed. */
const totalUsage = (rs: ServeResult[]) => ({ prompt_tokens: rs[0].promptTokens, completion_tokens: rs.reduce((n, r) => n + r.completionTokens, 0) });

/** Runs every choice; the first to fail cancels the others. */
function generateAll(worker: ServeWorker, submits: ServeSubmit[], onToken: (i: number, token: number | null, text: string, logprob?: LogprobEntry) => void = () => {}, onStart: (n: number) => void = () => {}): Promise<ServeResult[]> {
  const all = Promise.all(submits.map((s, i) => worker.generate(s, (token, text, logprob) => onToken(i, token, text, logprob), onStart)));
  all.catch(() => submits.forEach((s) => worker.cancel(s.id)));
  return all;
}

/** Answers with every choice at once, as JSON. */
export async function jsonGeneration(c: Context, worker: ServeWorker, submits: ServeSubmit[], release: (err?: unknown) => void): Promise<Response> {
  // The caller went away (the API gave up on this runner while it was frozen): nobody will read the answer.
  const gone = () => submits.forEach((s) => worker.cancel(s.id));
  c.req.raw.signal.addEventListener("abort", gone, { once: true });
  // Gone before this point (while the runner read the request or fetched the adapter): no event will come.
  if (c.req.raw.signal.aborted) gone();
  let failed: unknown;
  try {
    const rs = await generateAll(worker, submits);
    const choices: GenerateChoice[] = rs.map((r) => ({ text: r.text, tokens: r.tokens, finish_reason: r.finishReason, ...(r.logprobs ? { logprobs: r.logprobs } : {}) }));
    const out: GenerateResponse = { text: rs[0].text, tokens: rs[0].tokens, finish_reason: rs[0].finishReason, usage: totalUsage(rs), choices, ...formatOf(submits, worker) };
    return c.json(out);
  } catch (err) {
    failed = err;
    return failure(c, err);
  } finally {
    c.req.raw.signal.removeEventListener("abort", gone);
    release(failed);
  }
}

/**
 * SSE: headers go out with the first token (or the request's error as a plain JSON error), then one
 * `data:` event per token and a final done or error event. A client that disconnects cancels the sequence.
 * The first delta carries `prompt_tokens` (the worker reports it before any token): with the deltas counted,
 * the API can bill a stream that is cut short.
 */
export async function streamGeneration(c: Context, worker: ServeWorker, submits: ServeSubmit[], release: (err?: unknown) => void): Promise<Response> {
  const enc = new TextEncoder();
  const buffered: GenerateEvent[] = [];
  let push: ((e: GenerateEvent) => void) | null = null;
  let first: () => void = () => {};
  const started = new Promise<void>((ok) => (first = ok));
  const emit = (e: GenerateEvent) => (push ? push(e) : buffered.push(e));
  let promptTokens: number | undefined;
  let sentPrompt = false;
  const several = submits.length > 1;
  const send = (i: number, { token, text, logprob }: TokenDelta) => {
    // The first delta sent carries what the API checks and bills a stream cut short by.
    const opening = sentPrompt ? {} : { prompt_tokens: promptTokens, ...formatOf(submits, worker) };
    emit({ type: "delta", ...(several ? { index: i } : {}), text, token, ...opening, ...(logprob ? { logprob } : {}) });
    sentPrompt = true;
    first();
  };
  // A token's delta waits while its text_offset may still be cut by a stop string, so the stream's offsets are the JSON answer's.
  const settling = submits.map(() => new SettledDeltas());
  // Before done or error: the tokens cut by a stop string, and on a failure those generated (the API bills them).
  const sendHeld = () => settling.forEach((s, i) => s.end().forEach((d) => send(i, d)));
  const result = generateAll(
    worker,
    submits,
    (i, token, text, logprob) => settling[i].push({ token, text, logprob }).forEach((d) => send(i, d)),
    (n) => (promptTokens = n),
  ).then(
    (rs) => (release(), rs),
    (err: unknown) => {
      release(err);
      throw err;
    },
  );
  const ended = result.then(
    (rs) => {
      sendHeld();
      emit({ type: "done", finish_reason: rs[0].finishReason, ...(several ? { finish_reasons: rs.map((r) => r.finishReason) } : {}), usage: totalUsage(rs) });
    },
    (err: unknown) => {
      sendHeld();
      emit({ type: "error", message: err instanceof Error ? err.message : String(err) });
    },
  );
  // The client may leave while the request waits for a row or prefills: the stream's cancel() below is not
  // there yet, and without this the sequence would hold its place until its first token found the socket closed.
  const gone = () => submits.forEach((s) => worker.cancel(s.id));
  c.req.raw.signal.addEventListener("abort", gone, { once: true });
  if (c.req.raw.signal.aborted) gone();
  await Promise.race([started, result.catch(() => undefined)]);
  c.req.raw.signal.removeEventListener("abort", gone);
  if (!buffered.some((e) => e.type === "delta")) {
    // Failed before any token: an ordinary error answer, not a stream.
    const err = await result.then(() => null, (e: unknown) => e);
    if (err) return failure(c, err);
  }
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const write = (e: GenerateEvent) => {
        try {
          controller.enqueue(enc.encode(`data: ${JSON.stringify(e)}\n\n`));
          if (e.type !== "delta") controller.close();
        } catch {
          // The client went away (the stream was cancelled); nothing to tell it.
        }
      };
      for (const e of buffered.splice(0)) write(e);
      push = write;
      void ended;
    },
    cancel() {
      for (const s of submits) worker.cancel(s.id);
    },
  });
  return new Response(stream, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" } });
}
