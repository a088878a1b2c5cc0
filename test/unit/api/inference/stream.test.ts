// The streaming answer bills each generation exactly once, however the stream ends: read to the end,
// left by the client before anything was read, or broken off by the runner.
import { describe, expect, it } from "vitest";
import type { GenerateEvent, GenerateUsage } from "../../../../api/src/inference/runner-protocol.js";
import { streamCompletion, type StreamCall } from "../../../../api/src/inference/stream.js";

/** A runner's SSE body holding `events`, then closed (or errored, with `fail`). */
function runnerBody(events: GenerateEvent[], fail = false): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let next = 0;
  // One event per pull: erroring a stream discards what is still queued, so the events go out first.
  return new ReadableStream({
    pull(c) {
      if (next < events.length) c.enqueue(enc.encode(`data: ${JSON.stringify(events[next++])}\n\n`));
      else if (fail) c.error(new Error("runner connection dropped"));
      else c.close();
    },
  });
}

function recorder(o: Partial<StreamCall> = {}): { call: StreamCall; billed: GenerateUsage[] } {
  const billed: GenerateUsage[] = [];
  const call: StreamCall = { kind: "text", meta: { id: "cmpl-r1", created: 0, model: "m" }, requestId: "r1", includeUsage: true, logprobs: false, n: 1, format: "text", echo: null, meter: async (u) => void billed.push(u), ...o };
  return { call, billed };
}

async function settled(billed: GenerateUsage[], want: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (billed.length < want && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 5));
  await new Promise((ok) => setTimeout(ok, 20)); // room for a wrong second bill to show up
}

// No Hono context is needed off Workers: the stream only asks it for an execution context.
const ctx = {} as never;
const done = (prompt: number, completion: number): GenerateEvent => ({ type: "done", finish_reason: "stop", usage: { prompt_tokens: prompt, completion_tokens: completion } });

describe("streamCompletion billing", () => {
  it("ends a runner stream that closes without its done event with an error event, not as a complete answer", async () => {
    const { call, billed } = recorder();
    const text = await streamCompletion(ctx, runnerBody([{ type: "delta", text: "a", token: 5, prompt_tokens: 4 }]), call).text();
    expect(text).toMatch(/"error":\{"code":"generation_failed","message":"the runner's stream ended before the answer finished/);
    // OpenAI's envelope, which its client raises as an APIError with error.type.
    expect(text).toMatch(/"param":null,"type":"server_error","request_id":/);
    expect(text).not.toContain("[DONE]");
    await settled(billed, 1);
    expect(billed).toEqual([{ prompt_tokens: 4, completion_tokens: 1 }]);
  });

  it("bills the runner's report once when the stream is read to the end", async () => {
    const { call, billed } = recorder();
    const res = streamCompletion(ctx, runnerBody([{ type: "delta", text: "a", token: 5, prompt_tokens: 7 }, done(7, 1)]), call);
    const text = await res.text();
    expect(text).toContain("[DONE]");
    await settled(billed, 1);
    expect(billed).toEqual([{ prompt_tokens: 7, completion_tokens: 1 }]);
  });

  it("bills the report of a stream that is only a done event, when the client left before reading it", async () => {
    const { call, billed } = recorder();
    const res = streamCompletion(ctx, runnerBody([done(7, 0)]), call);
    await res.body!.cancel();
    await settled(billed, 1);
    expect(billed).toEqual([{ prompt_tokens: 7, completion_tokens: 0 }]);
  });

  it("bills the prompt and the tokens received when the runner's connection drops", async () => {
    const { call, billed } = recorder();
    const res = streamCompletion(ctx, runnerBody([{ type: "delta", text: "a", token: 5, prompt_tokens: 4 }, { type: "delta", text: "b", token: 6 }], true), call);
    // The client hears why its answer stops short: an error event, and no [DONE].
    const text = await res.text();
    expect(text).toMatch(/data: \{"error":\{"code":"generation_failed","message":"the runner's stream broke off before the answer finished/);
    expect(text).not.toContain("[DONE]");
    await settled(billed, 1);
    expect(billed).toEqual([{ prompt_tokens: 4, completion_tokens: 2 }]);
  });

  it("bills nothing when the runner ends before a first token or a report", async () => {
    const { call, billed } = recorder();
    const res = streamCompletion(ctx, runnerBody([], true), call);
    await res.text().catch(() => undefined);
    await settled(billed, 0);
    expect(billed).toEqual([]);
  });
});

describe("streamCompletion logprobs", () => {
  const entry = (token: string, logprob: number) => ({ token, bytes: [...new TextEncoder().encode(token)], logprob, top_logprobs: [{ token, bytes: [], logprob }] });
  const events: GenerateEvent[] = [
    { type: "delta", text: "ab", token: 1, prompt_tokens: 3, logprob: entry("ab", -0.5) },
    // A token whose text is held back (a possible stop string) still sends its logprobs.
    { type: "delta", text: "", token: 2, logprob: entry("c", -1) },
    { type: "delta", text: "c", token: 3, logprob: entry("d", -2) },
    done(3, 3),
  ];
  const chunks = async (res: Response) =>
    (await res.text())
      .split("\n\n")
      .filter((b) => b.startsWith("data: {"))
      .map((b) => JSON.parse(b.slice(6)));

  it("sends each token's logprobs in the legacy shape with text offsets, and stores them with the result", async () => {
    let stored: unknown = null;
    const { call } = recorder({ logprobs: true, settle: async (r) => void (stored = r) });
    const got = (await chunks(streamCompletion(ctx, runnerBody(events), call))).filter((c) => c.choices.length && !c.choices[0].finish_reason);
    expect(got.map((c) => c.choices[0].logprobs)).toEqual([
      { tokens: ["ab"], token_logprobs: [-0.5], top_logprobs: [{ ab: -0.5 }], text_offset: [0] },
      { tokens: ["c"], token_logprobs: [-1], top_logprobs: [{ c: -1 }], text_offset: [2] },
      { tokens: ["d"], token_logprobs: [-2], top_logprobs: [{ d: -2 }], text_offset: [3] },
    ]);
    await settled([], 0);
    expect(stored).toMatchObject({ choices: [{ text: "abc", finish_reason: "stop", logprobs: events.slice(0, 3).map((e) => (e as { logprob: unknown }).logprob) }] });
  });

  it("holds a token's entry until its text is sent, so a stop string of several tokens gives the whole answer's text_offset", async () => {
    // The runner's events for "ab" + "c" + "d" + "e" with stop "cde": "c" and "d" are held back (their offsets, 2
    // and 3, are past the text sent), then "e" completes the stop string and the cut leaves "ab". The whole
    // answer puts every cut token at the text's end: [0, 2, 2, 2].
    const at = (token: string, logprob: number, text_offset: number) => ({ ...entry(token, logprob), text_offset });
    const cut: GenerateEvent[] = [
      { type: "delta", text: "ab", token: 1, prompt_tokens: 3, logprob: at("ab", -0.5, 0) },
      { type: "delta", text: "", token: 2, logprob: at("c", -1, 2) },
      { type: "delta", text: "", token: 3, logprob: at("d", -1, 3) },
      { type: "delta", text: "", token: 4, logprob: at("e", -1, 2) },
      done(3, 4),
    ];
    // Without the stop string's last byte the held text goes out after all: the offsets stand.
    const released: GenerateEvent[] = [...cut.slice(0, 3), { type: "delta", text: "cdx", token: 4, logprob: at("x", -1, 4) }, done(3, 4)];
    for (const [events, text, offsets] of [
      [cut, "ab", [0, 2, 2, 2]],
      [released, "abcdx", [0, 2, 3, 4]],
    ] as const) {
      let stored: { choices: { logprobs: { text_offset?: number }[] }[] } | null = null;
      const { call } = recorder({ logprobs: true, settle: async (r) => void (stored = r as typeof stored) });
      const got = (await chunks(streamCompletion(ctx, runnerBody(events), call))).filter((c) => c.choices.length && !c.choices[0].finish_reason);
      expect(got.map((c) => c.choices[0].text).join("")).toBe(text);
      expect(got.flatMap((c) => c.choices[0].logprobs?.tokens ?? [])).toEqual(["ab", "c", "d", events === cut ? "e" : "x"]);
      expect(got.flatMap((c) => c.choices[0].logprobs?.text_offset ?? [])).toEqual(offsets);
      // Each entry goes out no later than the chunk with its text, and never before the text before it.
      let sent = 0;
      for (const c of got) {
        for (const o of c.choices[0].logprobs?.text_offset ?? []) expect(o).toBeLessThanOrEqual(sent + c.choices[0].text.length);
        sent += c.choices[0].text.length;
      }
      await settled([], 0);
      // An Idempotency-Key's replay keeps the same offsets.
      expect(stored!.choices[0].logprobs.map((l) => l.text_offset)).toEqual(offsets);
    }
  });

  it("passes the entries as chat's content, after a role chunk with none (as OpenAI's)", async () => {
    const { call } = recorder({ kind: "chat", logprobs: true });
    const got = (await chunks(streamCompletion(ctx, runnerBody(events), call))).filter((c) => c.choices.length && !c.choices[0].finish_reason);
    expect(got[0].choices[0]).toMatchObject({ delta: { role: "assistant", content: "" }, logprobs: { content: [], refusal: null } });
    expect(got.slice(1).map((c) => c.choices[0].logprobs)).toEqual(events.slice(0, 3).map((e) => ({ content: [(e as { logprob: unknown }).logprob], refusal: null })));
  });

  it("sends every logprob with tools too, those of text held back or never sent included", async () => {
    for (const tools of [{ names: ["f", "g"], finish: "tool_calls" as const, auto: true }, { names: ["f", "g"], finish: "tool_calls" as const }]) {
      const format = tools.auto ? ("tool_auto" as const) : ("tool_call" as const);
      const withTools: GenerateEvent[] = [
        { type: "delta", text: "hi <tool", token: 1, prompt_tokens: 3, response_format: format, logprob: entry("hi <tool", -0.5) },
        { type: "delta", text: "", token: 2, logprob: entry("x", -1) },
        done(3, 2),
      ];
      const { call } = recorder({ kind: "chat", logprobs: true, tools, format });
      const got = await chunks(streamCompletion(ctx, runnerBody(withTools), call));
      const sent = got.flatMap((c) => c.choices.flatMap((ch: { logprobs?: { content: unknown[] } | null }) => ch.logprobs?.content ?? []));
      expect(sent, JSON.stringify(tools)).toEqual(withTools.slice(0, 2).map((e) => (e as { logprob: unknown }).logprob));
      const content = got.map((c) => c.choices[0]?.delta?.content ?? "").join("");
      // No call in the text: it is answered as content either way.
      expect(content).toBe("hi <tool");
    }
  });
});

describe("streamCompletion of tool calls in the runner's format", () => {
  const chunks = async (res: Response) =>
    (await res.text())
      .split("\n\n")
      .filter((b) => b.startsWith("data: {"))
      .map((b) => JSON.parse(b.slice(6)));
  const auto = { names: ["lights"], finish: "tool_calls" as const, auto: true };
  const answer = (format?: "llama3_json"): GenerateEvent[] => [
    { type: "delta", text: '{"name": "lights", ', token: 1, prompt_tokens: 3, response_format: "tool_auto", ...(format ? { tool_call_format: format } : {}) },
    { type: "delta", text: '"parameters": {"on": true}}', token: 2 },
    done(3, 2),
  ];

  it("reads a Llama 3.1 call when the first delta says the format, and stores the format for replays", async () => {
    let stored: { tool_call_format?: string } | null = null;
    const { call } = recorder({ kind: "chat", meta: { id: "chatcmpl-r1", created: 0, model: "m" }, tools: auto, format: "tool_auto", settle: async (r) => void (stored = r) });
    const got = await chunks(streamCompletion(ctx, runnerBody(answer("llama3_json")), call));
    const deltas = got.filter((c) => c.choices.length).map((c) => c.choices[0]);
    expect(deltas.flatMap((d) => d.delta.tool_calls ?? [])).toEqual([{ index: 0, id: "call_r1_0", type: "function", function: { name: "lights", arguments: '{"on": true}' } }]);
    expect(deltas.map((d) => d.delta.content ?? "").join("")).toBe("");
    expect(deltas.at(-1).finish_reason).toBe("tool_calls");
    await settled([], 0);
    expect(stored!.tool_call_format).toBe("llama3_json");
  });

  it("reads the text as content when the runner names no format (Hermes, as older runners write)", async () => {
    const { call } = recorder({ kind: "chat", tools: auto, format: "tool_auto" });
    const got = await chunks(streamCompletion(ctx, runnerBody(answer()), call));
    const deltas = got.filter((c) => c.choices.length).map((c) => c.choices[0]);
    expect(deltas.map((d) => d.delta.content ?? "").join("")).toBe('{"name": "lights", "parameters": {"on": true}}');
    expect(deltas.at(-1).finish_reason).toBe("stop");
  });
});

describe("streamCompletion with n choices", () => {
  const payloads = async (res: Response) =>
    (await res.text())
      .split("\n\n")
      .filter((b) => b.startsWith("data: "))
      .map((b) => (b === "data: [DONE]" ? "[DONE]" : JSON.parse(b.slice(6))));

  it("sends chunks by index, each chat choice opening with its role, then every finish chunk", async () => {
    const { call, billed } = recorder({ kind: "chat", n: 2, includeUsage: false });
    const events: GenerateEvent[] = [
      { type: "delta", index: 1, text: "x", token: 9, prompt_tokens: 5 },
      { type: "done", finish_reason: "stop", finish_reasons: ["stop", "length"], usage: { prompt_tokens: 5, completion_tokens: 1 } },
    ];
    const got = await payloads(streamCompletion(ctx, runnerBody(events), call));
    expect(got.map((p) => (p === "[DONE]" ? p : [p.choices[0].index, p.choices[0].delta, p.choices[0].finish_reason]))).toEqual([
      [1, { role: "assistant", content: "" }, null],
      [1, { content: "x" }, null],
      [0, { role: "assistant", content: "" }, null],
      [0, {}, "stop"],
      [1, {}, "length"],
      "[DONE]",
    ]);
    await settled(billed, 1);
    expect(billed).toEqual([{ prompt_tokens: 5, completion_tokens: 1 }]);
  });

  it("ends with an error event, billing what ran, when the runner predates n or logprobs", async () => {
    for (const [o, events] of [
      [{ n: 2 }, [{ type: "delta", text: "a", token: 1, prompt_tokens: 4 }, done(4, 1)]],
      [{ logprobs: true }, [{ type: "delta", text: "a", token: 1, prompt_tokens: 4 }, done(4, 1)]],
      [{ kind: "chat", format: "json_object" }, [{ type: "delta", text: "a", token: 1, prompt_tokens: 4 }, done(4, 1)]],
    ] as [Partial<StreamCall>, GenerateEvent[]][]) {
      const { call, billed } = recorder(o);
      const got = await payloads(streamCompletion(ctx, runnerBody(events), call));
      expect(got.at(-1).error.message).toMatch(/predates (n|them|it); upgrade the runners/);
      expect(got).not.toContain("[DONE]");
      await settled(billed, 1);
      expect(billed).toEqual([{ prompt_tokens: 4, completion_tokens: 1 }]);
    }
  });
});
