// Mistral's newer calls, `[TOOL_CALLS]name[ARGS]{arguments}` one after another (tool_call_format mistral_v11):
// the name is one of the tools, an id may come after [CALL_ID], the arguments follow that tool's parameters, and
// after a call only another [TOOL_CALLS] (parallel calls) or the end may come.
import { describe, expect, it } from "vitest";
import { AutoToolCalls } from "../../../../gpu-runner/src/engine/generate/auto-tool-calls.js";
import { NamedCall } from "../../../../gpu-runner/src/engine/generate/named-call.js";
import { CallBlock, type CloneableRecognizer } from "../../../../gpu-runner/src/engine/generate/call-block.js";
import { schemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema.js";
import { toolCallGrammar } from "../../../../gpu-runner/src/serve/tool-call.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const tools = [
  { type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { enum: ["Paris", "Berlin"] } }, required: ["city"], additionalProperties: false } } },
  { type: "function" as const, function: { name: "get", parameters: { type: "object", properties: { key: { type: "string" } }, required: ["key"], additionalProperties: false } } },
];
const { jsonSchema } = toolCallGrammar(tools, ["get_weather", "get"], { named: true });
const grammar = schemaRecognizer(jsonSchema, "tools", { compact: true });
/** A call under a template that writes call ids (`callIds`), or one that does not. */
const fresh = (callIds = true) => NamedCall.open(() => grammar.clone(), callIds);
/** Whether `text`, fed in one piece, is (a prefix of) a call; and whether the call is then complete. */
const fed = (text: string, callIds = true) => {
  const c = fresh(callIds);
  return { ok: c.push(utf8(text)), done: c.done };
};

describe("NamedCall", () => {
  it("reads name[ARGS]{arguments} held to the named tool's parameters", () => {
    expect(fed('get_weather[ARGS]{"city": "Paris"}')).toEqual({ ok: true, done: true });
    expect(fed('get[ARGS]{"key": "a}[ARGS]{"}')).toEqual({ ok: true, done: true }); // brackets inside a string are text
    expect(fed('get_weather[ARGS]{"city": "Rome"}').ok).toBe(false); // not in the tool's enum
    expect(fed('get[ARGS]{"city": "Paris"}').ok).toBe(false); // another tool's arguments
    expect(fed('set_alarm[ARGS]{"hour": 7}').ok).toBe(false); // not a tool
    expect(fed("get_weathe[ARGS]").ok).toBe(false); // a tool's name cut short
    expect(fed('get_weather[ARGS] {"city": "Paris"}').ok).toBe(false); // the arguments right after [ARGS]
    expect(fed('get_weather[ARGS]{"city": "Paris"}}').ok).toBe(false); // nothing after them
    expect(fed('get_weather {"city": "Paris"}').ok).toBe(false);
    expect(fed('get_weather[ARGS]{"city": "Par')).toEqual({ ok: true, done: false });
  });

  it("takes an id of 9 letters or digits after [CALL_ID], and no other", () => {
    expect(fed('get[CALL_ID]a1B2c3D4e[ARGS]{"key": "k"}')).toEqual({ ok: true, done: true });
    expect(fed("get[CALL_ID]a1B2c3D4[ARGS]").ok).toBe(false); // 8 characters
    expect(fed("get[CALL_ID]a1B2c3D4e5").ok).toBe(false); // 10
    expect(fed("get[CALL_ID]a1B2c3D4-").ok).toBe(false);
    expect(fed("get[CALL_ID]a1B2c3D4e[CALL_ID]").ok).toBe(false);
  });

  it("takes no [CALL_ID] where the template writes no call ids", () => {
    expect(fed('get[ARGS]{"key": "k"}', false)).toEqual({ ok: true, done: true });
    expect(fed("get[CALL_ID]a1B2c3D4e", false).ok).toBe(false);
    expect(fed("get[C", false).ok).toBe(false);
    expect(fresh(false).accepts(utf8("get[CALL_ID]"))).toBe(false);
    expect(fresh(false).accepts(utf8("get[ARGS]"))).toBe(true);
  });

  it("accepts what push takes, byte by byte or at once, and leaves its state as it was", () => {
    const text = 'get_weather[CALL_ID]abcdefghi[ARGS]{"city": "Berlin"}';
    const c = fresh();
    for (let i = 0; i < text.length; i++) {
      const rest = utf8(text.slice(i));
      expect(c.accepts(rest), text.slice(i)).toBe(true);
      expect(c.accepts(utf8(text.slice(i) + "x"))).toBe(false);
      expect(c.push(rest.subarray(0, 1))).toBe(true);
    }
    expect(c.done).toBe(true);
    expect(c.accepts(utf8(" "))).toBe(false);
  });

  it("tries a token, before the arguments or in them, without copying the grammar (a mask tries every token)", () => {
    let clones = 0;
    /** The tools' grammar, counting its copies. */
    const counted = (g: CloneableRecognizer): CloneableRecognizer => ({
      get done() {
        return g.done;
      },
      get inPlainString() {
        return g.inPlainString;
      },
      push: (b) => g.push(b),
      accepts: (b) => g.accepts(b),
      clone: () => (clones++, counted(g.clone())),
    });
    const block = new CallBlock(NamedCall.open(() => counted(grammar.clone()), true), new Uint8Array());
    // (A refused token with a `}` is tried on a copy: the call may end inside it, and more follow.)
    const tried = (extra: string[] = []) => {
      clones = 0;
      for (const t of [" get", "\nget_weather", "  get", "get_weather[ARGS]", "get[CALL_ID]abc", "set", "[ARGS]", '{"key": "', ...extra]) block.accepts(utf8(t));
      return clones;
    };
    expect(tried()).toBe(0); // before the name, the gap included
    block.push(utf8(" get"));
    expect(tried()).toBe(0);
    block.push(utf8('[ARGS]{"key": "'));
    expect(block.accepts(utf8('v"}'))).toBe(true);
    expect(tried(['v"}', '"}'])).toBe(0);
  });

  it("says when it is inside the arguments' free string, and clones apart", () => {
    const c = fresh();
    c.push(utf8('get[ARGS]{"key": "'));
    expect(c.inPlainString).toBe(true);
    const copy = c.clone();
    copy.push(utf8('v"}'));
    expect(copy.done).toBe(true);
    expect(c.done).toBe(false);
    expect(c.inPlainString).toBe(true);
  });
});

describe("AutoToolCalls with Mistral's [TOOL_CALLS]name[ARGS]{…} calls", () => {
  const words = ["</s>", "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "hello", "get_weather", "get", '{"city": "', "Paris", "Rome", '"}', '{"key": "', "x", " ", "[", "abcdefghi", '"}[TOOL_CALLS]'];
  const w = (s: string) => words.indexOf(s);
  const EOS = w("</s>");
  // The tags are special tokens (as in Mistral's tokenizer) and kept in the text under auto.
  const vocab = { tokenBytes: (t: number) => utf8(words[t]), vocabSize: words.length, blocked: new Set([EOS, w("[TOOL_CALLS]"), w("[ARGS]"), w("[CALL_ID]")]) };
  const calls = (parallel: boolean) =>
    new AutoToolCalls(vocab, new Set([EOS]), { opening: utf8("[TOOL_CALLS]"), closing: new Uint8Array(), grammar: () => NamedCall.open(() => grammar.clone(), true), parallel, reopens: true, callTags: [utf8("[ARGS]"), utf8("[CALL_ID]")] });
  const feed = (c: AutoToolCalls, written: string[]) => {
    let complete = false;
    for (const s of written) {
      expect(c.allows(w(s)), `token ${JSON.stringify(s)}`).toBe(true);
      complete = c.take(w(s));
    }
    return complete;
  };
  const WEATHER = ["[TOOL_CALLS]", "get_weather", "[ARGS]", '{"city": "', "Paris", '"}'];

  it("opens a call with [TOOL_CALLS] after text, holds its name and arguments, and lets another call or the end follow", () => {
    const c = calls(true);
    feed(c, ["hello", "[TOOL_CALLS]"]);
    expect(c.inCall).toBe(true);
    expect(c.allows(w("hello"))).toBe(false);
    expect(c.allows(EOS)).toBe(false);
    feed(c, ["get_weather"]);
    expect(c.allows(w("[ARGS]"))).toBe(true); // a special token, allowed where the call's grammar has it
    expect(c.allows(w("[TOOL_CALLS]"))).toBe(false);
    feed(c, ["[ARGS]", '{"city": "']);
    expect(c.allows(w("Rome"))).toBe(false);
    expect(feed(c, ["Paris", '"}'])).toBe(false);
    expect(c.inCall).toBe(false);
    expect(c.allows(w("hello"))).toBe(false); // only another call or the end
    expect(c.allows(EOS)).toBe(true);
    feed(c, ["[TOOL_CALLS]", "get", "[CALL_ID]", "abcdefghi", "[ARGS]", '{"key": "', "x", '"}']);
    expect(c.allows(EOS)).toBe(true);
  });

  it("ends the answer with the first call when parallel calls are off", () => {
    expect(feed(calls(false), WEATHER)).toBe(true);
  });

  it("holds a forced call whose [TOOL_CALLS] is in the prompt from the first token, the answer ending with it", () => {
    const c = new AutoToolCalls(vocab, new Set([EOS]), { opening: utf8("[TOOL_CALLS]"), closing: new Uint8Array(), grammar: () => NamedCall.open(() => grammar.clone(), false), parallel: false, reopens: true, opened: true, callTags: [utf8("[ARGS]")] });
    expect(c.inCall).toBe(true);
    expect(c.allows(w("hello"))).toBe(false);
    expect(c.allows(EOS)).toBe(false);
    expect(c.allows(w("[TOOL_CALLS]"))).toBe(false);
    expect(feed(c, WEATHER.slice(1))).toBe(true);
  });

  it("refuses [ARGS] outside a call's grammar, and a token that runs from one call's end into the next tag", () => {
    const c = calls(true);
    feed(c, ["[TOOL_CALLS]", "get"]);
    expect(c.allows(w("[CALL_ID]"))).toBe(true);
    feed(c, ["[ARGS]", '{"key": "', "x"]);
    expect(c.allows(w("[ARGS]"))).toBe(false); // a special token is never string text
    expect(c.allows(w('"}[TOOL_CALLS]'))).toBe(false);
  });
});
