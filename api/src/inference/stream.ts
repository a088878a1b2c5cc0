// The streaming answer of a completion: the runner's SSE events become OpenAI chunks as they arrive, and the
// generation is metered exactly once — from the done event, or, when the stream ends early (the client went
// away, the runner failed or broke off), from the prompt and the tokens received so far.
import { runnerPredates, warnUnknownCallFormat } from "./runner-skew.js";
import type { Context } from "hono";
import type { AppEnv } from "../deps.js";
import { errorType } from "../errors.js";
import { chunkObject, type CompletionKind, type Finish } from "./openai-response.js";
import type { GenerateEvent, GenerateUsage, LogprobEntry, ResponseFormat } from "./runner-protocol.js";
import { runnerEvents, sseData } from "./sse.js";
import { keepRunning } from "../lib/keep-running.js";
import { emptyTally, tallyEvent, tallyUsage } from "./stream-usage.js";
import type { StoredCompletion } from "./idempotency.js";
import { ToolCallStream, saidCallFormat, toolCallId, toolFinish, withCallFormat, type SaidCallFormat, type ToolCallShape } from "./tool-calls.js";
import { isKnownCallFormat } from "./runner-protocol.js";
import { capOffsets, takeSettled } from "./settled-offsets.js";

export type StreamCall = {
  kind: CompletionKind;
  meta: { id: string; created: number; model: string };
  requestId: string;
  includeUsage: boolean;
  /** The request asked for logprobs: the stored result keeps them. */
  logprobs: boolean;
  /** Choices the runner streams (deltas carry their index). */
  n: number;
  /** The response format asked for: unless text, the runner's first delta must say it applies it. */
  format: ResponseFormat;
  /** Completions' echo: each choice opens with a chunk of this prompt text. */
  echo: string | null;
  /** Chat's forced tool call: each choice's text is a call, streamed as tool_calls deltas (tool-calls.ts). */
  tools?: ToolCallShape | null;
  /** Writes the usage events (idempotent per request id, so a second call would bill nothing). */
  meter: (usage: GenerateUsage) => Promise<void>;
  /** With an Idempotency-Key: told the finished completion, or null when the stream did not finish. */
  settle?: (result: StoredCompletion | null) => Promise<void>;
};

/** Why a runner's event does not answer this request (the runner predates `n`, logprobs or JSON mode), or null. */
function mismatch(e: GenerateEvent, call: StreamCall): string | null {
  const first = e.type === "delta" && e.prompt_tokens !== undefined;
  if (call.format !== "text" && first && e.response_format !== call.format) return runnerPredates.format(call.format);
  if (e.type === "delta" && (e.index ?? 0) >= call.n) return `the runner sent choice ${e.index} of ${call.n}`;
  if (e.type === "delta" && call.logprobs && e.token !== null && !e.logprob) return runnerPredates.logprobs;
  const finished = e.type === "done" ? (e.finish_reasons ?? [e.finish_reason]).length : call.n;
  if (finished !== call.n) return runnerPredates.choices(finished, call.n);
  return null;
}

/** Proxies the runner's event stream `body` to the client as chunks and meters it once, however it ends. */
export function streamCompletion(c: Context<AppEnv>, body: ReadableStream<Uint8Array>, call: StreamCall): Response {
  const enc = new TextEncoder();
  const upstream = runnerEvents(body);
  let tally = emptyTally;
  /** The client cancelled: nothing more is sent, but the usage so far is still billed. */
  let gone = false;
  let billing: Promise<void> | null = null;
  const bill = (usage: GenerateUsage) => (billing ??= call.meter(usage));

  async function pump(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    const send = (payload: unknown) => {
      if (!gone) controller.enqueue(sseData(enc, payload));
    };
    const chunk = (part: Parameters<typeof chunkObject>[2]) => chunkObject(call.kind, call.meta, part, call.includeUsage);
    /** The stream's last event when it cannot finish: an error, and no [DONE]. */
    let failed = false;
    const fail = (message: string) => {
      failed = true;
      send({ error: { code: "generation_failed", message, param: null, type: errorType.internal_error, request_id: call.requestId } });
    };
    /**
     * Per choice: its text so far, the length of the runner's part of it, its tokens' logprobs sent (when asked
     * for) and their strings' length (legacy text_offset), and whether it was opened.
     */
    const choices = Array.from({ length: call.n }, () => ({ text: call.echo ?? "", released: 0, logprobs: [] as LogprobEntry[], offset: 0, opened: false }));
    // A chat choice opens with a chunk of its role alone (the openai client's stream helper builds on it); a
    // completion's with the echoed prompt, if asked for.
    let tools = call.tools ?? null;
    const streamsOf = (shape: ToolCallShape | null) => (shape ? choices.map((_, index) => new ToolCallStream(shape, (k) => toolCallId(call.meta.id, index, k))) : null);
    let calls = streamsOf(tools);
    /** The format the runner's first delta says the calls are written in (read again by a replay). */
    let callFormat: SaidCallFormat = {};
    /**
     * Tokens' logprobs not sent yet: those whose text a tool call holds back go out with its next delta, and those
     * whose text_offset is past the text released (held back by the runner for a stop string) once it is final.
     */
    const held = choices.map(() => [] as LogprobEntry[]);
    /** Records entries as sent (the stored result keeps them) and returns them. */
    const sending = (index: number, entries: LogprobEntry[]) => {
      const ch = choices[index];
      ch.logprobs.push(...entries);
      for (const e of entries) ch.offset += e.token.length;
      return entries;
    };
    const open = (index: number) => {
      if (choices[index].opened) return;
      const delta = calls?.[index].opening();
      if (call.kind === "chat") send(chunk({ index, role: true, logprobs: call.logprobs ? [] : undefined, delta }));
      else if (call.echo) send(chunk({ index, text: call.echo }));
      choices[index].opened = true;
    };
    let reasons: Finish[] | null = null;
    try {
      for await (const e of upstream.events) {
        tally = tallyEvent(tally, e);
        if (gone) {
          // The client left before the first event was read; now that the prompt's size is known, stop the runner.
          if (tally.started) {
            await upstream.cancel();
            break;
          }
          continue;
        }
        const wrong = mismatch(e, call);
        if (wrong) {
          fail(wrong);
          await upstream.cancel().catch(() => undefined);
          break;
        }
        if (e.type === "delta") {
          // The first delta says how the template writes calls: the streams read them so from the first token.
          if (e.prompt_tokens !== undefined && e.tool_call_format && tools) {
            callFormat = saidCallFormat(e);
            if (!isKnownCallFormat(e.tool_call_format)) warnUnknownCallFormat(call.requestId, e.tool_call_format);
            tools = withCallFormat(tools, e.tool_call_format, e.tool_call_ids);
            calls = streamsOf(tools);
          }
          const index = e.index ?? 0;
          const ch = choices[index];
          ch.text += e.text;
          ch.released += e.text.length;
          open(index);
          if (!e.text && !e.logprob) continue;
          const delta = calls ? calls[index].push(e.text) : undefined;
          if (e.logprob) held[index].push(e.logprob);
          if (delta === null) continue;
          // A token whose text the runner holds back sends its logprobs once its offset is final.
          const offset = ch.offset;
          const logprobs = sending(index, takeSettled(held[index], ch.released, (e) => e));
          if (!e.text && logprobs.length === 0) continue;
          send(chunk({ index, text: e.text, delta, ...(logprobs.length ? { logprobs, offset } : {}) }));
        } else if (e.type === "done") {
          const ended = (reasons = e.finish_reasons ?? [e.finish_reason]);
          // Metered before the last chunks go out, so a client that has seen usage can query it.
          await bill(e.usage);
          // Choices without a token open too, before any choice's final chunk.
          choices.forEach((_, index) => open(index));
          // Logprobs of tokens whose text never went out (a stop string's, say) still do, at the text's end.
          held.forEach((h, index) => h.splice(0, h.length, ...capOffsets(h, choices[index].released)));
          calls?.forEach((stream, index) => {
            for (const delta of stream.end(ended[index])) send(chunk({ index, delta, logprobs: held[index].length ? sending(index, held[index].splice(0)) : undefined }));
          });
          held.forEach((h, index) => {
            const offset = choices[index].offset;
            if (h.length) send(chunk({ index, delta: calls ? {} : undefined, logprobs: sending(index, h.splice(0)), offset }));
          });
          ended.forEach((reason, index) => send(chunk({ index, reason: tools ? toolFinish({ text: choices[index].text, finish_reason: reason }, tools) : reason })));
          if (call.includeUsage) send(chunk({ usage: e.usage }));
        } else {
          fail(e.message);
        }
      }
      if (reasons) send("[DONE]");
      // A runner stream that ends without its done event must not read as a complete answer.
      else if (!failed) fail("the runner's stream ended before the answer finished; retry the request");
      if (!gone) controller.close();
    } catch (err) {
      console.error(`[${call.requestId}] streaming a completion failed:`, err);
      if (!gone) {
        fail("the runner's stream broke off before the answer finished; retry the request");
        controller.close();
      }
    } finally {
      // Not billed yet: the stream was cut short (bill what was processed and sent), or the client left
      // before a done event was read (bill the runner's report). Nothing when the runner never got to
      // a first token or a report (no usage rows of zero).
      if (!billing && (tally.started || tally.reported)) await bill(tallyUsage(tally)).catch((err: unknown) => console.error(`[${call.requestId}] metering a cut-short stream failed:`, err));
      // Stored for replay only if it finished and was billed (an unbilled answer must not be served again).
      const billed = billing !== null && (await (billing as Promise<void>).then(() => true, () => false));
      const ended = reasons; // (a const, for the closure below)
      const finished =
        ended && tally.reported && billed
          ? { id: call.meta.id, created: call.meta.created, usage: tally.reported, choices: choices.map((ch, i) => ({ text: ch.text, finish_reason: ended[i], logprobs: call.logprobs ? ch.logprobs : null })), ...callFormat }
          : null;
      await call.settle?.(finished).catch((err: unknown) => console.error(`[${call.requestId}] settling its Idempotency-Key failed:`, err));
    }
  }

  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      keepRunning(c, pump(controller));
    },
    cancel() {
      gone = true;
      // Stop the runner now, unless the first event (with the prompt's size) is still to be read: pump does it then.
      if (tally.started) void upstream.cancel().catch(() => undefined);
    },
  });
  return new Response(stream, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Request-Id": call.requestId } });
}
