// The API's shaping of tool calls: the calls a choice's text makes (forced with one tool or several, or auto with
// Hermes blocks, Llama 3.1's JSON call or Mistral's calls, old and new), their finish_reason, and the stream deltas, which must add up to the whole answer.
import { describe, expect, it } from "vitest";
import { ToolCallStream, callsOf, toolCallId, toolFinish, toolMessage, withCallFormat, type ToolCallShape } from "../../../../api/src/inference/tool-calls.js";
import { toolCallShapeOf } from "../../../../api/src/inference/openai-request.js";

const one: ToolCallShape = { names: ["get_weather"], finish: "stop" };
const several: ToolCallShape = { names: ["get_weather", "lights"], finish: "tool_calls" };
const auto: ToolCallShape = { names: ["get_weather", "lights"], finish: "tool_calls", auto: true };
/** Auto with a Llama 3.1-style template: the call is the whole answer, `{"name", "parameters"}`. */
const llama: ToolCallShape = { ...auto, format: "llama3_json" };
const llamaSeveral: ToolCallShape = { ...several, format: "llama3_json" };
/** Auto with a Mistral-style template: text, then `[TOOL_CALLS]` and a JSON array of calls. */
const mistral: ToolCallShape = { ...auto, format: "mistral" };
/** Auto with a newer Mistral template (tokenizer v11+): text, then `[TOOL_CALLS]name[ARGS]{arguments}` per call. */
const mistralV11: ToolCallShape = { ...auto, format: "mistral_v11" };
const ids = (k: number) => `c${k}`;

describe("callsOf", () => {
  it("reads a forced choice's text as the call: the arguments of the one tool, or {name, arguments} among several", () => {
    expect(callsOf('{"city":"Oslo"}', one)).toEqual({ content: "", calls: [{ name: "get_weather", arguments: '{"city":"Oslo"}' }] });
    expect(callsOf('{ "arguments": {"on": true}, "name": "lights" }', several).calls).toEqual([{ name: "lights", arguments: '{"on": true}' }]);
    // Cut short by max_tokens, or naming no tool of the request: no call, the text is content.
    expect(callsOf('{"name":"lights","argu', several)).toEqual({ content: '{"name":"lights","argu', calls: [] });
    expect(callsOf('{"name":"other","arguments":{}}', several).calls).toEqual([]);
  });

  it("reads auto text as content, then Hermes blocks, and keeps the text when they do not parse", () => {
    const two = 'Let me check.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n<tool_call>{"name": "lights", "arguments": {"on": false}}</tool_call>\n';
    expect(callsOf(two, auto)).toEqual({ content: "Let me check.", calls: [{ name: "get_weather", arguments: '{"city": "Oslo"}' }, { name: "lights", arguments: '{"on": false}' }] });
    for (const text of ["no call here", '<tool_call>{"name": "lights", "arg', '<tool_call>{"name": "nope", "arguments": {}}</tool_call>', '<tool_call>{"name": "lights", "arguments": {}}</tool_call> and more']) {
      expect(callsOf(text, auto), text).toEqual({ content: text, calls: [] });
    }
  });
});

describe("callsOf under auto with Llama 3.1's JSON calls", () => {
  it("reads a whole answer {name, parameters} as the call, after whitespace and the python tag", () => {
    const call = { name: "get_weather", arguments: '{"city": "Oslo"}' };
    for (const text of ['{"name": "get_weather", "parameters": {"city": "Oslo"}}', '\n {"name": "get_weather", "parameters": {"city": "Oslo"}}\n', '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}']) {
      expect(callsOf(text, llama), text).toEqual({ content: "", calls: [call] });
    }
    // Written without the grammar: an "arguments" key, or arguments as a JSON string, read as vLLM's parser reads them.
    expect(callsOf('{"name": "lights", "arguments": {"on": true}}', llama).calls).toEqual([{ name: "lights", arguments: '{"on": true}' }]);
    expect(callsOf('{"name": "lights", "parameters": "{\\"on\\": true}"}', llama).calls).toEqual([{ name: "lights", arguments: '{"on": true}' }]);
    expect(callsOf('{"name": "lights"}', llama).calls).toEqual([{ name: "lights", arguments: "{}" }]);
  });

  it("reads anything else as text: text before or after the object, another tool, a cut call, Hermes blocks", () => {
    for (const text of [
      'Sure: {"name": "lights", "parameters": {}}',
      '{"name": "lights", "parameters": {}} done',
      '{"name": "nope", "parameters": {}}',
      '{"name": "lights", "param',
      '{"name": "lights", "parameters": {}}{"name": "lights", "parameters": {}}',
      '<tool_call>{"name": "lights", "arguments": {}}</tool_call>',
      "[1, 2]",
      "hello",
    ]) {
      expect(callsOf(text, llama), text).toEqual({ content: text, calls: [] });
      expect(toolFinish({ text, finish_reason: "stop" }, llama), text).toBe("stop");
    }
    expect(toolFinish({ text: '{"name": "lights", "parameters": {}}', finish_reason: "stop" }, llama)).toBe("tool_calls");
  });

  it("reads a call only after the whitespace the runner lets precede it: other Unicode spaces begin text", () => {
    // The runner opens a call after spaces, tabs and newlines only; after any other byte it leaves the answer
    // free, so a call after a no-break space or an ideographic space was never held to the tools' grammar.
    for (const text of ['\u00a0{"name": "lights", "parameters": {}}', '\u3000{"name": "lights", "parameters": {}}', '<|python_tag|>\u00a0{"name": "lights", "parameters": {}}']) {
      expect(callsOf(text, llama), text).toEqual({ content: text, calls: [] });
      const stream = new ToolCallStream(llama, ids);
      expect(stream.push(text), text).toEqual({ content: text });
    }
  });

  it("reads a forced call among several tools with its parameters key", () => {
    expect(callsOf('{"name": "lights", "parameters": {"on": true}}', llamaSeveral).calls).toEqual([{ name: "lights", arguments: '{"on": true}' }]);
  });
});

describe("callsOf under auto with Mistral's [TOOL_CALLS] array", () => {
  it("reads the text before [TOOL_CALLS] as content and the array's calls, their ids left out", () => {
    const text = 'Checking.[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "abcdefghi"}, {"name": "lights", "arguments": {"on": true}}]';
    expect(callsOf(text, mistral)).toEqual({ content: "Checking.", calls: [{ name: "get_weather", arguments: '{"city": "Oslo"}' }, { name: "lights", arguments: '{"on": true}' }] });
    expect(callsOf('[TOOL_CALLS][{"name": "lights", "arguments": {}}]\n', mistral)).toEqual({ content: "", calls: [{ name: "lights", arguments: "{}" }] });
    expect(callsOf('[TOOL_CALLS] [{"name": "lights", "arguments": {}}, {"name": "lights", "arguments": {"on": false}}]', { ...mistral, single: true }).calls).toEqual([{ name: "lights", arguments: "{}" }]);
  });

  it("reads anything else as text: no tag, no array, another tool, text after the array, a cut single call", () => {
    for (const text of ["no call", '[TOOL_CALLS] {"name": "lights", "arguments": {}}', '[TOOL_CALLS] [{"name": "nope", "arguments": {}}]', '[TOOL_CALLS] [{"name": "lights", "arguments": {}}] and more', '[TOOL_CALLS] [{"name": "lights", "argu', "[TOOL_CALLS] []", '<tool_call>{"name": "lights", "arguments": {}}</tool_call>']) {
      expect(callsOf(text, mistral), text).toEqual({ content: text, calls: [] });
    }
  });

  it("keeps the calls before a later call that max_tokens cut short", () => {
    const text = '[TOOL_CALLS] [{"name": "lights", "arguments": {"on": true}}, {"name": "get_wea';
    expect(callsOf(text, mistral, true)).toEqual({ content: "", calls: [{ name: "lights", arguments: '{"on": true}' }] });
    expect(callsOf(text, mistral).calls).toEqual([]);
    // Cut right after a comma, or after a whole call whose array was not closed yet: the calls written stay.
    expect(callsOf('[TOOL_CALLS] [{"name": "lights", "arguments": {}}, ', mistral, true).calls).toEqual([{ name: "lights", arguments: "{}" }]);
    expect(callsOf('[TOOL_CALLS] [{"name": "lights", "arguments": {}}', mistral, true).calls).toEqual([{ name: "lights", arguments: "{}" }]);
  });

  it("reads text after a closed array as text also when max_tokens cut the answer (calls read without the grammar)", () => {
    for (const text of ['[TOOL_CALLS] [{"name": "lights", "arguments": {}}] and then some', '[TOOL_CALLS] [{"name": "lights", "arguments": {}}]]', '[TOOL_CALLS] [{"name": "lights", "arguments": {}} x']) {
      expect(callsOf(text, mistral, true), text).toEqual({ content: text, calls: [] });
      const stream = new ToolCallStream(mistral, ids);
      expect([stream.push(text), ...stream.end("length")], text).toEqual([null, { content: text }]);
    }
  });
});

describe("callsOf under auto, as the runner's grammar writes calls", () => {
  it("reads a call whose argument holds the closing tag", () => {
    const text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "a</tool_call>b"}}\n</tool_call>';
    expect(callsOf(text, auto).calls).toEqual([{ name: "get_weather", arguments: '{"city": "a</tool_call>b"}' }]);
  });

  it("keeps the calls before a last call that max_tokens cut short", () => {
    const text = '<tool_call>{"name": "lights", "arguments": {"on": true}}</tool_call>\n<tool_call>\n{"name": "get_';
    expect(callsOf(text, auto)).toEqual({ content: "", calls: [{ name: "lights", arguments: '{"on": true}' }] });
    expect(callsOf('<tool_call>\n{"name": "get_', auto).calls).toEqual([]);
    // Cut inside the next call's opening tag.
    expect(callsOf('<tool_call>{"name": "lights", "arguments": {"on": true}}</tool_call>\n<tool_ca', auto).calls).toEqual([{ name: "lights", arguments: '{"on": true}' }]);
    expect(callsOf("<tool_ca", auto)).toEqual({ content: "<tool_ca", calls: [] });
    // Cut inside a string that holds the closing tag: dropped when max_tokens is known to have cut it.
    const cutInString = '<tool_call>{"name": "lights", "arguments": {"on": true}}</tool_call><tool_call>{"name": "get_weather", "arguments": {"city": "see </tool_call> and';
    expect(callsOf(cutInString, auto, true).calls).toEqual([{ name: "lights", arguments: '{"on": true}' }]);
    expect(callsOf(cutInString, auto).calls).toEqual([]);
  });

  it("keeps only the first call with parallel_tool_calls false", () => {
    const two = '<tool_call>{"name": "lights", "arguments": {"on": true}}</tool_call><tool_call>{"name": "lights", "arguments": {"on": false}}</tool_call>';
    expect(callsOf(two, { ...auto, single: true }).calls).toEqual([{ name: "lights", arguments: '{"on": true}' }]);
  });
});

describe("toolMessage and toolFinish", () => {
  it("answers calls with content null (or the text before them), and text when there is no call", () => {
    expect(toolMessage({ text: '{"on":true}', finish_reason: "stop", logprobs: null }, { names: ["lights"], finish: "tool_calls" }, ids)).toEqual({
      role: "assistant",
      content: null,
      tool_calls: [{ id: "c0", type: "function", function: { name: "lights", arguments: '{"on":true}' } }],
    });
    expect(toolMessage({ text: 'Sure. <tool_call>{"name":"lights","arguments":{}}</tool_call>', finish_reason: "stop", logprobs: null }, auto, ids).content).toBe("Sure. ");
    expect(toolMessage({ text: '{"name":"li', finish_reason: "length", logprobs: null }, several, ids)).toEqual({ role: "assistant", content: '{"name":"li' });
  });

  it("says tool_calls for required and auto calls, stop for a named function, and keeps length", () => {
    const call = '<tool_call>{"name":"lights","arguments":{}}</tool_call>';
    expect(toolFinish({ text: "{}", finish_reason: "stop" }, several)).toBe("tool_calls");
    expect(toolFinish({ text: "{}", finish_reason: "stop" }, one)).toBe("stop");
    expect(toolFinish({ text: "{", finish_reason: "length" }, several)).toBe("length");
    expect(toolFinish({ text: call, finish_reason: "stop" }, auto)).toBe("tool_calls");
    expect(toolFinish({ text: "hello", finish_reason: "stop" }, auto)).toBe("stop");
  });

  it("names calls after the response, the choice and the call", () => {
    expect(toolCallId("chatcmpl-req_abc", 2)).toBe("call_req_abc_2");
    expect(toolCallId("chatcmpl-req_abc", 2, 1)).toBe("call_req_abc_2_1");
  });
});

describe("ToolCallStream", () => {
  /** Streams `pieces` and assembles content and calls as the openai client does. */
  function streamed(tools: ToolCallShape, pieces: string[], reason = "stop") {
    const s = new ToolCallStream(tools, ids);
    const deltas = [s.opening(), ...pieces.map((p) => s.push(p)), ...s.end(reason)].filter((d) => d !== null) as { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] }[];
    let content = "";
    const calls: { id?: string; name?: string; arguments: string }[] = [];
    for (const d of deltas) {
      content += d.content ?? "";
      for (const c of d.tool_calls ?? []) {
        const call = (calls[c.index] ??= { arguments: "" });
        call.id ??= c.id;
        call.name ??= c.function?.name;
        call.arguments += c.function?.arguments ?? "";
      }
    }
    return { content, calls, deltas };
  }

  it("adds up to the whole answer, however the text is cut into tokens", () => {
    const texts: [ToolCallShape, string][] = [
      [one, '{"city":"Oslo"}'],
      [one, '  {"city": "Oslo"}'], // spaces before the object are not arguments
      [auto, '<tool_call>{"name": "lights", "arguments": {}}</tool_call>\n<tool_c'],
      [several, '{"name":"lights","arguments":{"on":true}}'],
      [several, '{"name":"li'],
      [auto, 'Checking <tool_ca'],
      [auto, 'Checking.<tool_call>{"name": "lights", "arguments": {"on": true}}</tool_call>'],
      [auto, "a < b and <tool is not a call"],
      [auto, ' \n<tool_call>{"name": "lights", "arguments": {}}</tool_call>'],
      [auto, "  \n"],
      [llama, '{"name": "lights", "parameters": {"on": true}}'],
      [llama, ' \n{"name": "lights", "parameters": {"on": true}}'],
      [llama, '<|python_tag|>{"name": "lights", "parameters": {}}'],
      [llama, '{"name": "lights", "param'],
      [llama, "Hello {there}"],
      [llama, ' \n Hello {"name": "lights", "parameters": {}}'],
      [llama, "<|python_tag|>print(1)"],
      [llama, "<|pyt"],
      [llama, "  \n"],
      [mistral, 'Let me see. [TOOL_CALLS] [{"name": "lights", "arguments": {"on": true}}, {"name": "get_weather", "arguments": {}}]'],
      [mistral, "[TOOL_CALLS] [] no"],
      [mistral, "a [TOOL and [TOOL_C"],
      [mistralV11, 'Let me see. [TOOL_CALLS]lights[ARGS]{"on": true}[TOOL_CALLS]get_weather[CALL_ID]abcdefghi[ARGS]{}'],
      [mistralV11, "[TOOL_CALLS]lights[ARGS] no"],
    ];
    for (const [tools, text] of texts) {
      const whole = toolMessage({ text, finish_reason: "stop", logprobs: null }, tools, ids);
      for (const size of [1, 2, 5, 100]) {
        const pieces = Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size));
        const got = streamed(tools, pieces);
        expect(got.content, `${text} / ${size}`).toBe(whole.content ?? "");
        expect(got.deltas.some((d) => d.content !== undefined && d.content !== null && d.content !== "" && !("role" in d) && whole.content === null), `${text} / ${size}`).toBe(false);
        expect(got.calls, `${text} / ${size}`).toEqual((whole.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })));
      }
    }
  });

  it("reads a cut answer as the whole message does, streamed", () => {
    const text = '<tool_call>{"name": "lights", "arguments": {"on": true}}</tool_call><tool_call>{"name": "get_weather", "arguments": {"city": "see </tool_call> and';
    for (const reason of ["length", "stop"] as const) {
      const whole = toolMessage({ text, finish_reason: reason, logprobs: null }, auto, ids);
      const got = streamed(auto, [text.slice(0, 50), text.slice(50)], reason);
      expect(got.calls.map((c) => c.arguments), reason).toEqual((whole.tool_calls ?? []).map((c) => c.function.arguments));
      expect(got.content, reason).toBe(whole.content ?? "");
    }
  });

  it("sends one tool's arguments as they come, and holds back what may start <tool_call> in auto text", () => {
    const s = new ToolCallStream(one, ids);
    expect(s.opening()).toEqual({ role: "assistant", content: null, tool_calls: [{ index: 0, id: "c0", type: "function", function: { name: "get_weather", arguments: "" } }] });
    expect(s.push(" ")).toBeNull();
    expect(s.push(' {"ci')).toEqual({ tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] });
    expect(s.push(' "')).toEqual({ tool_calls: [{ index: 0, function: { arguments: ' "' } }] });
    const a = new ToolCallStream(auto, ids);
    expect(a.opening()).toEqual({ role: "assistant", content: "" });
    expect(a.push("Hi <tool")).toEqual({ content: "Hi " });
    expect(a.push("box")).toEqual({ content: "<toolbox" });
  });

  it("streams Llama-format text at once when it begins with anything but a call, and holds an answer that begins with {", () => {
    const text = new ToolCallStream(llama, ids);
    expect(text.opening()).toEqual({ role: "assistant", content: "" });
    expect(text.push(" \n")).toBeNull();
    expect(text.push("Hi {")).toEqual({ content: " \nHi {" });
    expect(text.push('"name"')).toEqual({ content: '"name"' });
    const m = new ToolCallStream(mistral, ids);
    expect(m.push("Hi [TOOL_")).toEqual({ content: "Hi " });
    expect(m.push("CALLS] [")).toBeNull();
    const call = new ToolCallStream(llama, ids);
    expect(call.push("<|python")).toBeNull();
    expect(call.push("_tag|>")).toBeNull();
    expect(call.push('{"name": "lights", ')).toBeNull();
    expect(call.push('"parameters": {}}')).toBeNull();
    expect(call.end("stop")).toEqual([{ tool_calls: [{ index: 0, id: "c0", type: "function", function: { name: "lights", arguments: "{}" } }] }]);
  });
});

describe("toolCallShapeOf", () => {
  const tools = [{ function: { name: "get_weather" } }, { function: { name: "lights" } }];
  it("reads tool_choice (auto by default) and parallel_tool_calls false as at most one call under auto", () => {
    expect(toolCallShapeOf({ tools })).toEqual(auto);
    expect(toolCallShapeOf({ tools, parallel_tool_calls: false })).toEqual({ ...auto, single: true });
    expect(toolCallShapeOf({ tools, tool_choice: "required", parallel_tool_calls: false })).toEqual(several);
    expect(toolCallShapeOf({ tools, tool_choice: { type: "function", function: { name: "get_weather" } } })).toEqual(one);
    expect(toolCallShapeOf({ tools, tool_choice: "none" })).toBeNull();
    expect(toolCallShapeOf({ tools: [] })).toBeNull();
  });
});

describe("withCallFormat", () => {
  it("reads calls in the format the runner said, Hermes when it said none, and none in a format the API does not know", () => {
    expect(withCallFormat(auto, "mistral")).toEqual({ ...auto, format: "mistral" });
    expect(withCallFormat(auto, "mistral_v11")).toEqual(mistralV11);
    // Whether a mistral_v11 template writes call ids, as the runner said (an older runner says nothing).
    expect(withCallFormat(auto, "mistral_v11", false)).toEqual({ ...mistralV11, callIds: false });
    expect(withCallFormat(auto, "mistral_v11", true)).toEqual({ ...mistralV11, callIds: true });
    expect(withCallFormat(auto, "hermes", false)).toEqual({ ...auto, format: "hermes" });
    expect(withCallFormat(one, undefined)).toEqual(one);
    // A newer runner's format: the answer is its text, forced or auto.
    expect(withCallFormat(auto, "future_format")).toBeNull();
    expect(withCallFormat(one, "future_format")).toBeNull();
    expect(withCallFormat(null, "hermes")).toBeNull();
  });
});
