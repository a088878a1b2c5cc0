// Mistral's calls after [TOOL_CALLS]: a JSON array of calls, each held to the tools' grammar, compact, at most
// maxCalls of them; a token may straddle a call's end and what follows it.
import { describe, expect, it } from "vitest";
import { CallList } from "../../../../gpu-runner/src/engine/generate/call-list.js";
import { schemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema.js";
import { toolCallGrammar } from "../../../../gpu-runner/src/serve/tool-call.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const tools = [
  { type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { enum: ["Paris", "Berlin"] } }, required: ["city"], additionalProperties: false } } },
  { type: "function" as const, function: { name: "lights", parameters: { type: "object", properties: { on: { type: "boolean" } }, required: ["on"], additionalProperties: false } } },
];
const { jsonSchema } = toolCallGrammar(tools, ["get_weather", "lights"], { named: true });
const grammar = schemaRecognizer(jsonSchema, "tools", { compact: true });
const list = (max?: number) => new CallList(() => grammar.clone(), max);
const WEATHER = '{"name": "get_weather", "arguments": {"city": "Paris"}}';
const LIGHTS = '{"name": "lights", "arguments": {"on": true}}';

/** Pushes `pieces` one by one, each checked first; returns whether the list is done. */
function feed(l: CallList, pieces: string[]): boolean {
  for (const p of pieces) {
    expect(l.accepts(utf8(p)), p).toBe(true);
    expect(l.push(utf8(p))).toBe(true);
  }
  return l.done;
}

describe("CallList", () => {
  it("reads one call or several, as templates write them", () => {
    for (const text of [`[${WEATHER}]`, `[${WEATHER}, ${LIGHTS}]`, `[${LIGHTS},${WEATHER}]`, `[ ${LIGHTS}]`]) {
      expect(feed(list(), [text]), text).toBe(true);
      // A byte at a time, too.
      expect(feed(list(), [...text]), text).toBe(true);
    }
  });

  it("holds each call to the tools' grammar", () => {
    const l = list();
    feed(l, ['[{"name": "get_weather", "arguments": {"city": "']);
    expect(l.accepts(utf8("Rome"))).toBe(false);
    expect(l.accepts(utf8("Par"))).toBe(true);
    expect(list().accepts(utf8('[{"name": "other"'))).toBe(false);
    expect(list().accepts(utf8('[{"name": "lights", "parameters"'))).toBe(false);
  });

  it("takes a token that straddles a call's end and what follows it", () => {
    const l = list();
    feed(l, ['[{"name": "lights", "arguments": {"on": true']);
    expect(l.accepts(utf8("}}, {"))).toBe(true);
    expect(l.accepts(utf8("}}]"))).toBe(true);
    expect(l.accepts(utf8("}}  {"))).toBe(false);
    expect(feed(l, ["}}]"])).toBe(true);
    expect(l.accepts(utf8(" "))).toBe(false); // nothing after the array
  });

  it("refuses what templates do not write: no array, spaces where they write none, an empty array, more calls than allowed", () => {
    for (const text of ["{", "[]", "[  {", `[${WEATHER} ,`, `[${WEATHER},  {`, `[${WEATHER}]]`]) expect(list().accepts(utf8(text)), text).toBe(false);
    const one = list(1);
    feed(one, [`[${WEATHER}`]);
    expect(one.accepts(utf8(","))).toBe(false);
    expect(one.accepts(utf8("]"))).toBe(true);
  });

  it("says when a free string is open, for JSON mode's shortcut, and clones independently", () => {
    const l = list();
    feed(l, ['[{"name": "get_weather", "arguments": {"city": "P']);
    expect(l.inPlainString).toBe(false); // an enum value
    const c = l.clone();
    expect(c.push(utf8('aris"}}]'))).toBe(true);
    expect(c.done).toBe(true);
    expect(l.done).toBe(false);
  });
});
