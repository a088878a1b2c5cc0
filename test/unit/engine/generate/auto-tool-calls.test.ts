// tool_choice "auto" under a grammar: text is free until the opening tag; a call then follows the tools'
// grammar to the closing tag, also when one token straddles the JSON's end; after a call, only another call
// (parallel) or the end.
import { describe, expect, it } from "vitest";
import { AutoToolCalls } from "../../../../gpu-runner/src/engine/generate/auto-tool-calls.js";
import { CallList } from "../../../../gpu-runner/src/engine/generate/call-list.js";
import { schemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema.js";
import { toolCallGrammar } from "../../../../gpu-runner/src/serve/tool-call.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const tokens = [
  "<|end|>", "</tool_call>", "hello", " there", "<tool_call>", "\n", '{"name": "', "get_weather", '", "arguments": ',
  '{"city": "', "Paris", "Rome", '"}}', '"}}\n', "\n</tool_call>", "<tool", "_call>", "<tool_call>\n{", "<tool_call>x", " ", "  ",
  '"}', "}", "set_alarm", '{"hour": ', "7", "}}", "</tool_call", ">\n", ">\n\n\n", "",
];
/** The id of a token in a test vocabulary given as its texts. */
const tokenIdIn = (vocabulary: string[]) => (s: string) => {
  const t = vocabulary.indexOf(s);
  if (t < 0) throw new Error(`no token ${JSON.stringify(s)}`);
  return t;
};
const id = tokenIdIn(tokens);
/** Writes tokens given by their texts, each one allowed first; whether the last completed the answer. */
const feedWith = (idOf: (s: string) => number) => (c: AutoToolCalls, written: string[]) => {
  let complete = false;
  for (const s of written) {
    expect(c.allows(idOf(s)), `token ${JSON.stringify(s)}`).toBe(true);
    complete = c.take(idOf(s));
  }
  return complete;
};
const END = id("<|end|>");
// The closing tag is a special token here (as in some tokenizers): a call may still write it.
const vocab = { tokenBytes: (t: number) => utf8(tokens[t]), vocabSize: tokens.length, blocked: new Set([END, id("</tool_call>")]) };
const tools = [
  { type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { enum: ["Paris", "Berlin"] } }, required: ["city"], additionalProperties: false } } },
  { type: "function" as const, function: { name: "set_alarm", parameters: { type: "object", properties: { hour: { type: "integer" } }, required: ["hour"], additionalProperties: false } } },
];
const { jsonSchema } = toolCallGrammar(tools, ["get_weather", "set_alarm"], { named: true });
const grammar = schemaRecognizer(jsonSchema, "tools", { compact: true });
const calls = (parallel: boolean) => new AutoToolCalls(vocab, new Set([END]), { opening: utf8("<tool_call>"), closing: utf8("</tool_call>"), grammar: () => grammar.clone(), parallel });

/** Feeds `written`, each token checked first; returns what the last take() said (the answer is complete). */
function write(c: AutoToolCalls, written: string[]): boolean {
  let complete = false;
  for (const s of written) {
    expect(c.allows(id(s)), `token ${JSON.stringify(s)}`).toBe(true);
    complete = c.take(id(s));
  }
  return complete;
}
const WEATHER = ["<tool_call>", "\n", '{"name": "', "get_weather", '", "arguments": ', '{"city": "', "Paris", '"}}', "\n</tool_call>"];

describe("AutoToolCalls", () => {
  it("leaves text free, stop tokens included, until a call opens", () => {
    const c = calls(true);
    expect(write(c, ["hello", " there", "<tool"])).toBe(false);
    expect(c.allows(END)).toBe(true);
    expect(c.allows(id("hello"))).toBe(true);
    expect(c.allows(tokens.length + 2)).toBe(true); // a padded id writes nothing
  });

  it("holds a call to the tools' grammar: names, arguments, spacing, no end inside", () => {
    const c = calls(true);
    write(c, ["hello", "<tool", "_call>", "\n", '{"name": "']);
    expect(c.allows(id("get_weather"))).toBe(true);
    expect(c.allows(id("hello"))).toBe(false);
    write(c, ["get_weather", '", "arguments": ', '{"city": "']);
    expect(c.allows(id("Rome"))).toBe(false); // not in the enum
    expect(c.allows(END)).toBe(false);
    write(c, ["Paris"]);
    expect(c.allows(id('"}'))).toBe(true);
    expect(c.allows(id("  "))).toBe(false); // compact: at most one space between JSON tokens
    expect(c.allows(id("<tool_call>"))).toBe(false);
    const logits = new Float32Array(tokens.length);
    c.mask(logits);
    expect(tokens.filter((_, t) => logits[t] !== -Infinity)).toEqual(['"}}', '"}}\n', '"}']);
  });

  it("takes a token that straddles the JSON's end and what follows it", () => {
    const c = calls(true);
    write(c, WEATHER.slice(0, -2));
    expect(c.allows(id('"}}\n'))).toBe(true);
    write(c, ['"}}\n']);
    expect(c.allows(id("\n</tool_call>"))).toBe(false); // one gap before the closing tag, not two
    expect(write(c, ["</tool_call>"])).toBe(false);
  });

  it("opens a call inside a token, and refuses a token whose bytes after the tag cannot start one", () => {
    const c = calls(true);
    expect(c.allows(id("<tool_call>x"))).toBe(false);
    write(c, ["hello", "<tool_call>\n{"]);
    expect(c.allows(id('{"name": "'))).toBe(false); // the call's object is open already
    expect(c.allows(id("hello"))).toBe(false);
    expect(c.allows(END)).toBe(false);
  });

  it("ends the answer after the first call when parallel calls are off", () => {
    expect(write(calls(false), WEATHER)).toBe(true);
  });

  it("lets only whitespace, another call or the end follow a call", () => {
    const c = calls(true);
    expect(write(c, WEATHER)).toBe(false);
    expect(c.allows(id("hello"))).toBe(false);
    expect(c.allows(END)).toBe(true);
    write(c, ["\n"]);
    expect(c.allows(END)).toBe(true);
    write(c, ["<tool"]);
    expect(c.allows(END)).toBe(false); // half a tag
    write(c, ["_call>", " ", '{"name": "', "set_alarm", '", "arguments": ', '{"hour": ', "7", "}}", "</tool_call>"]);
    expect(c.allows(id("  "))).toBe(true);
    write(c, ["  "]);
    expect(c.allows(id("\n"))).toBe(false); // at most two between calls
    const logits = new Float32Array(tokens.length);
    c.mask(logits);
    expect(tokens.filter((_, t) => logits[t] !== -Infinity)).toEqual(["<|end|>", "<tool_call>", "<tool", "<tool_call>\n{"]);
  });

  it("ends a call with a token that writes spaces after the closing tag, which count as between calls", () => {
    const c = calls(true);
    write(c, WEATHER.slice(0, -1));
    write(c, ["\n", "</tool_call"]);
    expect(c.allows(id(">\n\n\n"))).toBe(false); // more than two between calls
    write(c, [">\n"]);
    expect(c.inCall).toBe(false);
    expect(c.allows(id(" "))).toBe(true);
    expect(c.allows(id("  "))).toBe(false);
    expect(c.allows(END)).toBe(true);
  });

  it("refuses a token that writes nothing after a call (it could repeat forever), not before one", () => {
    const c = calls(true);
    expect(c.allows(id(""))).toBe(true);
    write(c, WEATHER);
    expect(c.allows(id(""))).toBe(false);
  });

  it("says when a call is open", () => {
    const c = calls(true);
    write(c, ["hello", "<tool"]);
    expect(c.inCall).toBe(false);
    write(c, ["_call>"]);
    expect(c.inCall).toBe(true);
  });
});

describe("AutoToolCalls with a call that is the whole answer (Llama 3.1's JSON)", () => {
  const words = ["<|eot|>", "<|python_tag|>", "hello", " there", "\n", " ", '{"name": "', "{", "get_weather", '", "parameters": ', '", "arguments": ', '{"city": "', "Paris", "Rome", '"}}', '"}', "}", '"}}\n', "}\n", " {", "x{"];
  const w = tokenIdIn(words);
  const EOT = w("<|eot|>");
  const TAG = w("<|python_tag|>");
  // Both special, as in Llama 3's tokenizer; the python tag is left out of the text (hidden).
  const llamaVocab = { tokenBytes: (t: number) => utf8(words[t]), vocabSize: words.length, blocked: new Set([EOT, TAG]) };
  const { jsonSchema: llamaSchema } = toolCallGrammar(tools, ["get_weather", "set_alarm"], { named: true, format: "llama3_json" });
  const llamaGrammar = schemaRecognizer(llamaSchema, "tools", { compact: true });
  const leading = () => new AutoToolCalls(llamaVocab, new Set([EOT]), { opening: new Uint8Array(), closing: new Uint8Array(), leading: true, grammar: () => llamaGrammar.clone(), parallel: false, hidden: new Set([TAG]) });
  const feed = feedWith(w);
  const CALL = ['{"name": "', "get_weather", '", "parameters": ', '{"city": "', "Paris", '"}}'];

  it("opens a call with a { that starts the answer, after whitespace and the python tag, and ends the answer when it closes", () => {
    for (const before of [[], ["\n", " "], ["<|python_tag|>"], [" ", "<|python_tag|>", "\n"]]) {
      const c = leading();
      feed(c, before);
      expect(c.inCall).toBe(false);
      feed(c, CALL.slice(0, 1));
      expect(c.inCall).toBe(true);
      expect(feed(c, CALL.slice(1))).toBe(true);
    }
    const c = leading();
    expect(feed(c, [" {"])).toBe(false);
    expect(c.inCall).toBe(true);
  });

  it("holds the call to the tools' grammar with the parameters key: no other key, no end inside, nothing after", () => {
    const c = leading();
    feed(c, ['{"name": "', "get_weather"]);
    expect(c.allows(w('", "arguments": '))).toBe(false);
    feed(c, ['", "parameters": ', '{"city": "']);
    expect(c.allows(w("Rome"))).toBe(false); // not in the enum
    expect(c.allows(EOT)).toBe(false);
    expect(c.allows(TAG)).toBe(false);
    feed(c, ["Paris"]);
    expect(c.allows(w('"}}\n'))).toBe(false); // nothing after the call's object
    const logits = new Float32Array(words.length);
    c.mask(logits);
    expect(words.filter((_, t) => logits[t] !== -Infinity)).toEqual(['"}}', '"}']);
  });

  it("leaves the answer free once it begins with anything but {: no call can open after text", () => {
    for (const start of ["hello", "x{"]) {
      const c = leading();
      feed(c, [start]);
      expect(c.inCall).toBe(false);
      for (const s of ["{", '{"name": "', " there", "}", "<|python_tag|>"]) expect(c.allows(w(s))).toBe(true);
      feed(c, ['{"name": "', "Rome"]);
      expect(c.inCall).toBe(false);
      expect(c.allows(EOT)).toBe(true);
    }
  });

  it("lets the answer end before it begins, as text", () => {
    const c = leading();
    expect(c.allows(EOT)).toBe(true);
    feed(c, ["\n"]);
    expect(c.allows(EOT)).toBe(true);
  });
});

describe("AutoToolCalls with Mistral's [TOOL_CALLS] and a JSON array of calls", () => {
  const words = ["</s>", "[TOOL_CALLS]", "hello", " [", "[", '{"name": "', "get_weather", '", "arguments": ', '{"city": "', "Paris", "Rome", '"}}', '"}}]', '"}}, ', "]", '"}', "set_alarm", '{"hour": ', "7", "}}]", " ", "\n", '"}}]\n'];
  const w = tokenIdIn(words);
  const EOS = w("</s>");
  // [TOOL_CALLS] is special (as in Mistral's tokenizer) and kept in the text under auto.
  const mistralVocab = { tokenBytes: (t: number) => utf8(words[t]), vocabSize: words.length, blocked: new Set([EOS, w("[TOOL_CALLS]")]) };
  const mistral = (parallel: boolean) =>
    new AutoToolCalls(mistralVocab, new Set([EOS]), { opening: utf8("[TOOL_CALLS]"), closing: new Uint8Array(), grammar: () => new CallList(() => grammar.clone(), parallel ? Infinity : 1), parallel });
  const feed = feedWith(w);
  const CALL = ['{"name": "', "get_weather", '", "arguments": ', '{"city": "', "Paris"];

  it("opens the calls with [TOOL_CALLS] after any text, holds them to the grammar, and ends the answer with the array", () => {
    const c = mistral(true);
    feed(c, ["hello", "[TOOL_CALLS]", " [", ...CALL]);
    expect(c.inCall).toBe(true);
    expect(c.allows(w("Rome"))).toBe(false);
    expect(c.allows(EOS)).toBe(false);
    feed(c, ['"}}, ', '{"name": "', "set_alarm", '", "arguments": ', '{"hour": ', "7"]);
    expect(feed(c, ["}}]"])).toBe(true);
  });

  it("takes the array right after the tag too, and only one call without parallel calls", () => {
    const c = mistral(false);
    feed(c, ["[TOOL_CALLS]", "[", ...CALL]);
    expect(c.allows(w('"}}, '))).toBe(false);
    expect(feed(c, ['"}}]'])).toBe(true);
  });

  it("lets nothing follow the array, whose end ends the answer: allows() and take() agree on a token that writes a newline after it", () => {
    const c = mistral(true);
    feed(c, ["[TOOL_CALLS]", "[", ...CALL]);
    expect(c.allows(w('"}}]\n'))).toBe(false);
    expect(() => c.take(w('"}}]\n'))).toThrow();
  });

  it("refuses what is not an array of calls after the tag", () => {
    const c = mistral(true);
    feed(c, ["[TOOL_CALLS]"]);
    expect(c.allows(w("hello"))).toBe(false);
    expect(c.allows(w('{"name": "'))).toBe(false);
    expect(c.allows(w(" ["))).toBe(true);
  });
});
