// Newer Mistral calls (tool_call_format mistral_v11) as the API reads them: content before the first [TOOL_CALLS],
// then `name[ARGS]{arguments}` per call (an id after [CALL_ID] left out), whole and streamed; anything else is text.
import { describe, expect, it } from "vitest";
import { ToolCallStream, callsOf, type ToolCallShape } from "../../../../api/src/inference/tool-calls.js";

const mistralV11: ToolCallShape = { names: ["get_weather", "lights"], finish: "tool_calls", auto: true, format: "mistral_v11" };
const ids = (k: number) => `c${k}`;
/** Forced among several tools: the runner put [TOOL_CALLS] in the prompt, the text is `name[ARGS]{…}`. */
const forcedV11: ToolCallShape = { names: ["get_weather", "lights"], finish: "tool_calls", format: "mistral_v11" };

describe("callsOf of a forced call among several tools", () => {
  it("reads name[ARGS]{arguments} written after the prompt's [TOOL_CALLS] as the call, anything else as text", () => {
    expect(callsOf('lights[ARGS]{"on": true}', forcedV11)).toEqual({ content: "", calls: [{ name: "lights", arguments: '{"on": true}' }] });
    expect(callsOf('get_weather[CALL_ID]a1B2c3D4e[ARGS]{"city": "Oslo"}', forcedV11).calls).toEqual([{ name: "get_weather", arguments: '{"city": "Oslo"}' }]);
    for (const text of ['lights[ARGS]{"on": tr', '{"name": "lights", "arguments": {}}', "nope[ARGS]{}"]) expect(callsOf(text, forcedV11, true), text).toEqual({ content: text, calls: [] });
    const s = new ToolCallStream(forcedV11, ids);
    expect(s.opening()).toEqual({ role: "assistant", content: null });
    expect(s.push("lights[AR")).toBeNull();
    expect(s.push("GS]{}")).toBeNull();
    expect(s.end("stop")).toEqual([{ tool_calls: [{ index: 0, id: "c0", type: "function", function: { name: "lights", arguments: "{}" } }] }]);
  });
});

describe("callsOf under auto with Mistral's newer [TOOL_CALLS]name[ARGS]{…} calls", () => {
  it("reads the text before the first [TOOL_CALLS] as content and each call's name and arguments, an id after [CALL_ID] left out", () => {
    const text = 'Checking.[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}[TOOL_CALLS]lights[CALL_ID]a1B2c3D4e[ARGS]{"on": true}';
    expect(callsOf(text, mistralV11)).toEqual({ content: "Checking.", calls: [{ name: "get_weather", arguments: '{"city": "Oslo"}' }, { name: "lights", arguments: '{"on": true}' }] });
    expect(callsOf('[TOOL_CALLS]lights[ARGS]{}\n', mistralV11)).toEqual({ content: "", calls: [{ name: "lights", arguments: "{}" }] });
    // Whitespace between calls, and before a name (as the runner's grammar lets through).
    expect(callsOf('[TOOL_CALLS] lights[ARGS]{} \n[TOOL_CALLS]lights[ARGS]{"on": false}', mistralV11).calls).toHaveLength(2);
    expect(callsOf('[TOOL_CALLS]lights[ARGS]{}[TOOL_CALLS]lights[ARGS]{"on": false}', { ...mistralV11, single: true }).calls).toEqual([{ name: "lights", arguments: "{}" }]);
  });

  it("reads anything else as text: another tool, no [ARGS], arguments that are not an object, a bad id, text after the calls", () => {
    for (const text of [
      "no call",
      '[TOOL_CALLS]nope[ARGS]{"on": true}',
      '[TOOL_CALLS]lights{"on": true}',
      "[TOOL_CALLS]lights[ARGS][1]",
      '[TOOL_CALLS]lights[ARGS]{"on": tru}',
      "[TOOL_CALLS]lights[CALL_ID]short[ARGS]{}",
      '[TOOL_CALLS]lights[ARGS]{"on": true} and more',
      '[TOOL_CALLS]lights[ARGS]{"on": true}[TOOL_CALLS]',
      '[TOOL_CALLS] [{"name": "lights", "arguments": {}}]',
    ]) {
      expect(callsOf(text, mistralV11), text).toEqual({ content: text, calls: [] });
    }
  });

  it("reads an id after [CALL_ID] only where the template writes call ids (as the runner said; an older runner says nothing: read)", () => {
    const ided = '[TOOL_CALLS]lights[CALL_ID]a1B2c3D4e[ARGS]{"on": true}';
    const call = [{ name: "lights", arguments: '{"on": true}' }];
    expect(callsOf(ided, { ...mistralV11, callIds: true }).calls).toEqual(call);
    expect(callsOf(ided, mistralV11).calls).toEqual(call);
    expect(callsOf(ided, { ...mistralV11, callIds: false })).toEqual({ content: ided, calls: [] });
    expect(callsOf('[TOOL_CALLS]lights[ARGS]{"on": true}', { ...mistralV11, callIds: false }).calls).toEqual(call);
    expect(callsOf('lights[CALL_ID]a1B2c3D4e[ARGS]{"on": true}', { ...forcedV11, callIds: false }).calls).toEqual([]);
    // Cut inside what would be [CALL_ID], which no call goes on with there: text, as anything else after calls is.
    const cut = '[TOOL_CALLS]lights[ARGS]{}[TOOL_CALLS]lights[CALL';
    expect(callsOf(cut, { ...mistralV11, callIds: false }, true)).toEqual({ content: cut, calls: [] });
    expect(callsOf(cut, mistralV11, true).calls).toEqual([{ name: "lights", arguments: "{}" }]);
  });

  it("keeps the calls before a later call that max_tokens cut short, wherever the cut falls", () => {
    const first = '[TOOL_CALLS]lights[ARGS]{"on": true}';
    for (const rest of ["[TOOL_CA", "[TOOL_CALLS]get_wea", "[TOOL_CALLS]get_weather[AR", '[TOOL_CALLS]get_weather[ARGS]{"city": "O']) {
      expect(callsOf(first + rest, mistralV11, true), rest).toEqual({ content: "", calls: [{ name: "lights", arguments: '{"on": true}' }] });
      expect(callsOf(first + rest, mistralV11).calls, rest).toEqual([]);
    }
    expect(callsOf('[TOOL_CALLS]get_weather[ARGS]{"city": "O', mistralV11, true).calls).toEqual([]);
  });

  it("streams the text before [TOOL_CALLS] as it comes, and the calls whole at the end", () => {
    const s = new ToolCallStream(mistralV11, ids);
    expect(s.push("Hi [TOOL_")).toEqual({ content: "Hi " });
    expect(s.push("CALLS]lights[ARGS]")).toBeNull();
    expect(s.push('{"on": true}')).toBeNull();
    expect(s.end("stop")).toEqual([{ tool_calls: [{ index: 0, id: "c0", type: "function", function: { name: "lights", arguments: '{"on": true}' } }] }]);
    const text = new ToolCallStream(mistralV11, ids);
    expect(text.push("[TOOL_CALLS]nope")).toBeNull();
    expect(text.end("stop")).toEqual([{ content: "[TOOL_CALLS]nope" }]);
  });
});
