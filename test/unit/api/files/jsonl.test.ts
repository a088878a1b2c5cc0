import { describe, expect, it } from "vitest";
import { JsonlValidator } from "../../../../api/src/files/jsonl.js";

const enc = (s: string) => new TextEncoder().encode(s);

/** Feeds `text` in chunks of `size` bytes and returns the summary. */
function validate(text: string | Uint8Array, size = 1 << 16, maxLineBytes = 1 << 20) {
  const v = new JsonlValidator({ maxLineBytes });
  const bytes = typeof text === "string" ? enc(text) : text;
  for (let i = 0; i < bytes.length; i += size) v.push(bytes.subarray(i, i + size));
  return v.finish();
}

const chat = (content = "hi") => JSON.stringify({ messages: [{ role: "user", content }, { role: "assistant", content: "hello" }] });

describe("JsonlValidator", () => {
  it("accepts each of the supervised formats and counts records and bytes", () => {
    const text = `${chat()}\n${chat()}\n`;
    expect(validate(text)).toEqual({ format: "chat", lines: 2, bytes: enc(text).length, errors: [], errorCount: 0 });
    expect(validate('{"prompt":"2+2=","completion":"4"}').format).toBe("prompt_completion");
    expect(validate('{"text":"once upon a time"}\n{"text":"the end"}').lines).toBe(2);
  });

  it("splits lines the same way whatever the chunking, including multi-byte characters split across chunks", () => {
    const text = `${chat("héllo wörld ✓ 🤖")}\r\n\r\n${chat("日本語")}\n   \n${chat("x")}`;
    const whole = validate(text);
    expect(whole).toMatchObject({ format: "chat", lines: 3, errorCount: 0 });
    for (const size of [1, 2, 3, 5, 17]) expect(validate(text, size)).toEqual(whole);
  });

  it("skips blank lines but keeps them in the line numbering", () => {
    const s = validate(`\n${chat()}\n\n{"oops"\n`);
    expect(s.lines).toBe(1);
    expect(s.errors).toEqual([{ line: 4, message: expect.stringMatching(/not valid JSON/) }]);
  });

  it("reports the line and reason of each bad record", () => {
    const lines = [
      chat(),
      "[1,2]",
      JSON.stringify({ messages: [{ role: "user", content: "no answer" }] }),
      JSON.stringify({ messages: [{ role: "robot", content: "x" }, { role: "assistant", content: "y" }] }),
      JSON.stringify({ foo: 1 }),
      JSON.stringify({ messages: [{ role: "assistant", content: 3 }] }),
    ];
    const s = validate(lines.join("\n"));
    expect(s.errorCount).toBe(5);
    expect(s.errors.map((e) => e.line)).toEqual([2, 3, 4, 5, 6]);
    expect(s.errors[0].message).toMatch(/must be a JSON object/);
    expect(s.errors[1].message).toMatch(/chat record: messages: needs at least one assistant message/);
    expect(s.errors[2].message).toMatch(/messages\.0\.role/);
    expect(s.errors[3].message).toMatch(/none of the keys/);
    expect(s.errors[4].message).toMatch(/messages\.0\.content/);
  });

  it("takes DPO preference pairs in OpenAI's format, and names what is wrong with a bad pair", () => {
    const out = (content: string) => [{ role: "assistant", content }];
    const pair = (o: Record<string, unknown> = {}) => JSON.stringify({ input: { messages: [{ role: "user", content: "Sky?" }] }, preferred_output: out("blue"), non_preferred_output: out("green"), ...o });
    expect(validate(`${pair()}\n${pair()}\n`)).toMatchObject({ format: "preference", lines: 2, errorCount: 0 });
    const calls = { tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }] };
    const call = [{ role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] }];
    expect(validate(pair({ input: { messages: [{ role: "user", content: "q" }], ...calls }, preferred_output: call })).errorCount).toBe(0);
    const bad = [
      pair({ preferred_output: [{ role: "user", content: "x" }] }),
      pair({ non_preferred_output: [...out("a"), ...out("b")] }),
      pair({ non_preferred_output: out("blue") }),
      pair({ input: { messages: [] } }),
      pair({ preferred_output: call }),
      pair({ input: { messages: [{ role: "user", content: "q" }], ...calls }, preferred_output: [{ ...call[0], tool_calls: [{ ...call[0].tool_calls[0], function: { name: "g", arguments: "{}" } }] }] }),
      pair({ preferred_output: [{ role: "assistant", content: "" }] }),
      pair({ preferred_output: [] }),
      pair({ input: { messages: [{ role: "user", content: "q" }, ...out("a")] } }),
      pair({ input: { messages: [{ role: "user", content: "q" }, ...call, { role: "user", content: "and?" }], ...calls } }),
      // The template does not show a call's id: answers that differ only there are the same answer.
      pair({ input: { messages: [{ role: "user", content: "q" }], ...calls }, preferred_output: call, non_preferred_output: [{ ...call[0], tool_calls: [{ ...call[0].tool_calls[0], id: "c2" }] }] }),
      pair({ preferred_output: [{ role: "assistant", content: "blue", weight: 1 }] }),
    ];
    const s = validate(bad.join("\n"), 1 << 16, 1 << 20);
    expect(s.errorCount).toBe(12);
    expect(s.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/^preference record: preferred_output: must be an assistant message/),
      expect.stringMatching(/^preference record: non_preferred_output: must hold exactly one assistant message/),
      expect.stringMatching(/^preference record: non_preferred_output: is the same as preferred_output/),
      expect.stringMatching(/^preference record: input\.messages: Too small/),
      expect.stringMatching(/^preference record: input\.tools: a line with tool calls lists its tools/),
    ]);
    const all = new JsonlValidator({ maxLineBytes: 1 << 20, maxErrors: 10 });
    all.push(enc(bad.join("\n")));
    const messages = all.finish().errors.map((e) => e.message);
    expect(messages[5]).toMatch(/preferred_output\.0\.tool_calls\.0\.function\.name: g is not one of the tools/);
    expect(messages[6]).toMatch(/preferred_output: the assistant message needs non-empty content or tool_calls/);
    expect(messages[7]).toMatch(/^preference record: preferred_output: must hold exactly one assistant message/);
    expect(messages[8]).toMatch(/input\.messages\.1\.role: the input ends on an assistant turn/);
    expect(messages[9]).toMatch(/input\.messages\.1\.tool_calls: the calls c1 have no tool turn answering them/);
    const more = new JsonlValidator({ maxLineBytes: 1 << 20, maxErrors: 20 });
    more.push(enc(bad.join("\n")));
    const rest = more.finish().errors.map((e) => e.message);
    expect(rest[10]).toMatch(/non_preferred_output: is the same as preferred_output/);
    expect(rest[11]).toMatch(/preferred_output: weight is for chat lines/);
    expect(validate(`${pair()}\n${chat()}`).errors[0].message).toMatch(/is a chat record but line 1 is preference/);
  });

  it("takes tools and tool calls in OpenAI's format, and refuses a misplaced call", () => {
    const call = { id: "c", type: "function", function: { name: "f", arguments: "{}" } };
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
    const ok = JSON.stringify({ messages: [{ role: "user", content: "x" }, { role: "assistant", content: null, tool_calls: [call] }, { role: "tool", tool_call_id: "c", content: "1" }, { role: "assistant", content: "one" }], tools });
    expect(validate(ok).errors).toEqual([]);
    // OpenAI's own examples leave content out of a calling turn.
    expect(validate(JSON.stringify({ messages: [{ role: "user", content: "x" }, { role: "assistant", tool_calls: [call] }], tools })).errors).toEqual([]);
    // strict as OpenAI's clients write it, null or a boolean.
    for (const strict of [null, true, false]) {
      const withStrict = [{ type: "function", function: { name: "f", parameters: { type: "object" }, strict } }];
      expect(validate(JSON.stringify({ messages: [{ role: "user", content: "x" }, { role: "assistant", tool_calls: [call] }], tools: withStrict })).errors).toEqual([]);
    }
    const bad = (messages: unknown[], extra = {}) => JSON.stringify({ messages, ...extra });
    const s = validate(
      [
        bad([{ role: "user", content: null }, { role: "assistant", content: "y" }]),
        bad([{ role: "user", content: "x", tool_calls: [call] }, { role: "assistant", content: "y" }]),
        bad([{ role: "assistant", content: "y" }], { functions: [{ name: "f" }] }),
        bad([{ role: "assistant", content: "y" }, { role: "tool", content: "1" }]),
        bad([{ role: "assistant", content: null, tool_calls: [call] }, { role: "tool", tool_call_id: "other", content: "1" }], { tools }),
        bad([{ role: "assistant", content: null, tool_calls: [{ ...call, function: { name: "g", arguments: "{}" } }] }], { tools }),
        bad([{ role: "assistant", content: null, tool_calls: [{ ...call, function: { name: "f", arguments: "not json" } }] }]),
      ].join("\n"),
    );
    expect(s.errorCount).toBe(7);
    expect(s.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/messages\.0\.content: content is required/),
      expect.stringMatching(/messages\.0\.tool_calls: only assistant turns/),
      expect.stringMatching(/functions: .*send tools/),
      expect.stringMatching(/messages\.1\.tool_call_id: a tool turn/),
      expect.stringMatching(/messages\.1\.tool_call_id: no earlier assistant turn made the call other/),
    ]);
    const calls = validate(
      [
        bad([{ role: "assistant", content: null, tool_calls: [{ ...call, function: { name: "g", arguments: "{}" } }] }], { tools }),
        bad([{ role: "assistant", content: null, tool_calls: [{ ...call, function: { name: "f", arguments: "not json" } }] }], { tools }),
        bad([{ role: "assistant", content: null, tool_calls: [call] }]),
      ].join("\n"),
    );
    expect(calls.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/messages\.0\.tool_calls\.0\.function\.name: g is not one of the tools/),
      expect.stringMatching(/messages\.0\.tool_calls\.0\.function\.arguments: must be the JSON text of an object/),
      expect.stringMatching(/tools: a line with tool calls lists its tools/),
    ]);
    // The template writes arguments from their parsed value: a number that parsing changes would be learned changed.
    const withArgs = (args: string) => bad([{ role: "user", content: "x" }, { role: "assistant", content: null, tool_calls: [{ ...call, function: { name: "f", arguments: args } }] }], { tools });
    expect(validate(withArgs('{"id":12345678901234567891}')).errors[0].message).toMatch(/chat record: messages\.1\.tool_calls\.0\.function\.arguments: the number 12345678901234567891 cannot be kept exactly \(an integer beyond ±2\^53\); write it as a string/);
    expect(validate(withArgs('{"x":[1, -2e400]}')).errors[0].message).toMatch(/the number -2e400 cannot be kept exactly \(out of range\)/);
    expect(validate(withArgs('{"id":"12345678901234567891","n":-9007199254740991,"f":1.5e300}')).errorCount).toBe(0);
    const answer = (args: string) => [{ role: "assistant", tool_calls: [{ ...call, function: { name: "f", arguments: args } }] }];
    const pair = JSON.stringify({ input: { messages: [{ role: "user", content: "q" }], tools }, preferred_output: answer('{"n":1e999}'), non_preferred_output: answer("{}") });
    expect(validate(pair).errors[0].message).toMatch(/preference record: preferred_output\.0\.tool_calls\.0\.function\.arguments: the number 1e999/);
  });

  it("keeps only the first five errors but counts them all", () => {
    const s = validate(Array.from({ length: 9 }, () => "nope").join("\n"));
    expect(s.errorCount).toBe(9);
    expect(s.errors.map((e) => e.line)).toEqual([1, 2, 3, 4, 5]);
  });

  it("rejects a file that mixes formats at the first differing line", () => {
    const s = validate(`{"text":"a"}\n{"text":"b"}\n{"prompt":"p","completion":"c"}\n`);
    expect(s.format).toBe("text");
    expect(s.errors).toEqual([{ line: 3, message: "is a prompt_completion record but line 1 is text; all lines of a file must have the same format" }]);
  });

  it("validates prompt/completion and text fields, and trained assistant turns", () => {
    expect(validate('{"prompt":"p","completion":""}').errors[0].message).toMatch(/completion: must not be empty/);
    expect(validate('{"prompt":1,"completion":"c"}').errors[0].message).toMatch(/prompt_completion record: prompt/);
    expect(validate('{"text":""}').errors[0].message).toMatch(/text: must not be empty/);
    // A trained assistant turn without text or calls would teach the model to answer nothing.
    const turns = (content: string, weight?: 0) => JSON.stringify({ messages: [{ role: "user", content: "q" }, { role: "assistant", content, ...(weight === 0 ? { weight } : {}) }, { role: "user", content: "r" }, { role: "assistant", content: "a" }] });
    expect(validate(turns("")).errors[0].message).toMatch(/chat record: messages\.1\.content: an assistant turn that is trained on needs non-empty content \(or tool_calls\)/);
    expect(validate(turns(" \n")).errorCount).toBe(1);
    expect(validate(turns("", 0)).errorCount).toBe(0);
  });

  it("reports an over-long line without buffering it, then carries on", () => {
    const long = JSON.stringify({ text: "x".repeat(500) });
    const s = validate(`{"text":"ok"}\n${long}\n{"text":"fine"}`, 7, 100);
    expect(s.lines).toBe(2);
    expect(s.errors).toEqual([{ line: 2, message: expect.stringMatching(/longer than 100 bytes \(TUNESERVE_MAX_LINE_BYTES\)/) }]);
    // A line of exactly the limit passes.
    const exact = JSON.stringify({ text: "y".repeat(100 - 11) });
    expect(enc(exact).length).toBe(100);
    expect(validate(exact, 3, 100).errorCount).toBe(0);
    // The final line without a newline is checked too.
    expect(validate(`{"text":"ok"}\n${long}`, 1000, 100).errors[0].line).toBe(2);
  });

  it("rejects half a surrogate pair (it would train as U+FFFD), naming the field; accepts a whole pair", () => {
    expect(validate('{"text":"ok \\ud83d"}').errors[0].message).toMatch(/^text record: text: holds half of a UTF-16 surrogate pair alone/);
    const line = JSON.stringify({ messages: [{ role: "user", content: "q" }, { role: "assistant", content: "a" }] }).replace('"a"', '"\\udc00a"');
    expect(validate(line).errors[0].message).toMatch(/^chat record: messages\.1\.content: holds half/);
    expect(validate('{"text":"\\ud83e\\udd16 and 🤖"}').errorCount).toBe(0);
  });

  it("rejects invalid UTF-8 and accepts a byte-order mark", () => {
    const bad = new Uint8Array([...enc('{"text":"a'), 0xff, ...enc('"}')]);
    expect(validate(bad).errors[0]).toEqual({ line: 1, message: "is not valid UTF-8; save the file as UTF-8" });
    expect(validate(new Uint8Array([0xef, 0xbb, 0xbf, ...enc('{"text":"a"}')])).errorCount).toBe(0);
  });

  it("rejects an empty or blank-only file", () => {
    expect(validate("").errors[0].message).toMatch(/no records/);
    expect(validate("\n \n").errors).toEqual([{ line: 2, message: expect.stringMatching(/no records/) }]);
  });
});
