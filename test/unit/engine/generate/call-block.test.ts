// One call's body after its opening tag: gaps, the tools' grammar and the closing tag, read the same whole,
// in any cut and a byte at a time; accepts() agrees with push() and leaves the state as it was.
import { describe, expect, it } from "vitest";
import { CallBlock } from "../../../../gpu-runner/src/engine/generate/call-block.js";
import { schemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema.js";
import { toolCallGrammar } from "../../../../gpu-runner/src/serve/tool-call.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const tools = [
  { type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city"], additionalProperties: false } } },
  { type: "function" as const, function: { name: "set_alarm", parameters: { type: "object", properties: { hour: { type: "integer" } }, required: ["hour"], additionalProperties: false } } },
];
const { jsonSchema } = toolCallGrammar(tools, ["get_weather", "set_alarm"], { named: true });
const grammar = schemaRecognizer(jsonSchema, "tools", { compact: true });
const block = (trailing = 0) => new CallBlock(grammar.clone(), utf8("</tool_call>"), trailing);

describe("CallBlock", () => {
  it("reads a whole call in any cut, with at most one gap before and after the JSON", () => {
    const text = '\n{"name": "set_alarm", "arguments": {"hour": 7}}\n</tool_call>';
    for (let cut = 0; cut <= text.length; cut++) {
      const b = block();
      expect(b.push(utf8(text.slice(0, cut))) && b.push(utf8(text.slice(cut))), `cut at ${cut}`).toBe(true);
      expect(b.done).toBe(true);
    }
    expect(block().accepts(utf8('\n\n{"name"'))).toBe(false);
    expect(block().accepts(utf8('\n {"name"'))).toBe(false); // the gap and the JSON's own leading space
    expect(block().accepts(utf8(' {"name"'))).toBe(true);
    expect(block().accepts(utf8('{"name": "set_alarm", "arguments": {"hour": 7}}\n\n</tool_call>'))).toBe(false);
    expect(block().accepts(utf8('{"name": "set_alarm", "arguments": {"hour": 7}}</tool_call>x'))).toBe(false);
  });

  it("takes up to `trailing` spaces after the closing tag, and counts them", () => {
    const call = '{"name": "set_alarm", "arguments": {"hour": 7}}</tool_call>';
    const b = block(2);
    expect(b.push(utf8(`${call}\n `))).toBe(true);
    expect(b.spacesAfter).toBe(2);
    expect(block(2).accepts(utf8(`${call}\n \n`))).toBe(false);
    expect(block(0).accepts(utf8(`${call}\n`))).toBe(false);
  });

  it("tries without changing its state", () => {
    const b = block();
    b.push(utf8('{"name": "get_weather", "arguments": {"city": "Paris"}}'));
    expect(b.accepts(utf8("</tool_call>"))).toBe(true);
    expect(b.done).toBe(false);
    expect(b.inPlainString).toBe(false);
  });

  it("agrees with itself over random calls, damaged or not, cut at random: accepts, a copy's push, and a byte at a time", () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
    const callText = () => {
      const [colon, comma] = [pick([": ", ":"]), pick([", ", ","])];
      const json =
        rnd() < 0.5
          ? `{"name"${colon}"get_weather"${comma}"arguments"${colon}{"city"${colon}"${pick(["Paris", "a}b", "x</tool_call>y", "é\\n", ""])}"${rnd() < 0.5 ? `${comma}"days"${colon}${pick(["1", "23", "-4"])}` : ""}}}`
          : `{"name"${colon}"set_alarm"${comma}"arguments"${colon}{"hour"${colon}${pick(["7", "10", "0"])}}}`;
      return pick(["", "\n", " "]) + json + pick(["", "\n", " "]) + "</tool_call>";
    };
    const damage = (s: string) => {
      const chars = [...s];
      const at = Math.floor(rnd() * (chars.length + 1));
      const op = pick(["insert", "delete", "cut", "append"]);
      if (op === "insert") chars.splice(at, 0, pick([" ", "\n", "}", "<", "x", '"', "/", "\t"]));
      else if (op === "delete" && chars.length) chars.splice(Math.min(at, chars.length - 1), 1);
      else if (op === "cut") chars.length = at;
      else chars.push(pick([" ", "\n", "x", "<"]));
      return chars.join("");
    };
    for (let n = 0; n < 1500; n++) {
      let text = callText();
      for (let k = Math.floor(rnd() * 3); k > 0; k--) text = damage(text);
      const bytes = utf8(text);
      // A byte at a time: which prefixes are accepted, and whether the whole is a finished call.
      const byByte = block();
      const okUpTo = [true];
      for (let i = 0; i < bytes.length; i++) okUpTo.push(okUpTo[i] && byByte.push(bytes.subarray(i, i + 1)));
      const b = block();
      for (let from = 0; from < bytes.length; ) {
        const to = Math.min(bytes.length, from + 1 + Math.floor(rnd() * 20));
        const chunk = bytes.subarray(from, to);
        const state = [b.done, b.inPlainString];
        const accepted = b.accepts(chunk);
        expect([b.done, b.inPlainString]).toEqual(state);
        expect([accepted, b.clone().push(chunk)], `${JSON.stringify(text)} ${from}..${to}`).toEqual([okUpTo[to], okUpTo[to]]);
        if (!b.push(chunk)) break;
        if (to === bytes.length) expect(b.done).toBe(byByte.done);
        from = to;
      }
    }
  });
});
