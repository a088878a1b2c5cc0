// The API's shaping of forced tool calls: the call a choice's text makes, its finish_reason, and stream deltas.
import { describe, expect, it } from "vitest";
import { toolCallId, toolCallOf, toolDeltas, toolFinish, toolMessage } from "../../../../api/src/inference/tool-calls.js";

const one = { names: ["get_weather"], finish: "stop" as const };
const several = { names: ["get_weather", "lights"], finish: "tool_calls" as const };

describe("tool calls", () => {
  it("reads a choice's text as the call: the arguments of the one tool, or {name, arguments} among several", () => {
    expect(toolCallOf('{"city":"Oslo"}', one.names, "c")).toEqual({ id: "c", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } });
    expect(toolCallOf('{ "arguments": {"on": true}, "name": "lights" }', several.names, "c")?.function).toEqual({ name: "lights", arguments: '{"on":true}' });
    // Cut short by max_tokens, or naming no tool of the request: no call.
    expect(toolCallOf('{"name":"lights","argu', several.names, "c")).toBeNull();
    expect(toolCallOf('{"name":"other","arguments":{}}', several.names, "c")).toBeNull();
  });

  it("answers a cut-short call among several as text, and keeps finish_reason length", () => {
    expect(toolMessage({ text: '{"name":"li', finish_reason: "length", logprobs: null }, several, "c")).toEqual({ role: "assistant", content: '{"name":"li' });
    expect(toolFinish("length", several)).toBe("length");
    expect(toolFinish("stop", several)).toBe("tool_calls");
    expect(toolFinish("stop", one)).toBe("stop");
  });

  it("names calls after the response and choice", () => {
    expect(toolCallId("chatcmpl-req_abc", 2)).toBe("call_req_abc_2");
  });

  it("streams one tool's arguments as they come, and several tools' call whole at the end", () => {
    expect(toolDeltas.opening(one, "c").tool_calls?.[0]).toEqual({ index: 0, id: "c", type: "function", function: { name: "get_weather", arguments: "" } });
    expect(toolDeltas.text(one, '{"ci')).toEqual({ tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] });
    expect(toolDeltas.end(one, "{}", "c")).toBeNull();
    expect(toolDeltas.opening(several, "c")).toEqual({ role: "assistant", content: null });
    expect(toolDeltas.text(several, "{")).toBeNull();
    expect(toolDeltas.end(several, '{"name":"lights","arguments":{}}', "c")).toEqual({ tool_calls: [{ index: 0, id: "c", type: "function", function: { name: "lights", arguments: "{}" } }] });
    expect(toolDeltas.end(several, '{"name', "c")).toEqual({ content: '{"name' });
  });
});
