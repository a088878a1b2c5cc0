// `bench json-mask`: one JSON-mode mask (a refusal of the model's pick) over a synthetic vocabulary, at a
// position inside a string and inside an enum, with the string-safe fast path and with every token tried;
// then tool_choice "auto"'s mask outside a call (in text, and after a call). Prints one JSON line. No model:
// the mask is pure JavaScript on the serving worker's thread.
import { JsonMode, type JsonRecognizer } from "../gpu-runner/src/engine/generate/json-mode.js";
import { JsonObjectRecognizer } from "../gpu-runner/src/engine/generate/json-grammar.js";
import { schemaRecognizer } from "../gpu-runner/src/engine/generate/json-schema.js";
import { AutoToolCalls } from "../gpu-runner/src/engine/generate/auto-tool-calls.js";
import { CALL_LAYOUTS, toolCallGrammar } from "../gpu-runner/src/serve/tool-call.js";
import { parseFlags, UsageError } from "../gpu-runner/src/cli/args.js";
import { round } from "./env.js";

const USAGE = "usage: tuneserve bench json-mask [--vocab 150000] [--repeats 5]\n  times one JSON-mode mask over a synthetic vocabulary (no model, no peer)";

/** Random pieces of 1–7 characters of JSON-ish text after the 256 single bytes, as a BPE vocabulary roughly is. */
function syntheticVocabulary(size: number): Uint8Array[] {
  let s = 1;
  const rnd = () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const chars = 'abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJ0123456789 .,:;!?-"{}[]éü日本';
  const enc = new TextEncoder();
  return Array.from({ length: size }, (_, i) => (i < 256 ? Uint8Array.of(i) : enc.encode(Array.from({ length: 1 + Math.floor(rnd() * 7) }, () => chars[Math.floor(rnd() * chars.length)]).join(""))));
}

/** The recognizer as it is, but never reporting a plain string: every token is tried. */
const triedOnly = (r: JsonRecognizer): JsonRecognizer => ({ get done() { return r.done; }, inPlainString: false, push: (b) => r.push(b), accepts: (b) => r.accepts(b) });

export async function runJsonMaskBench(argv: string[]): Promise<void> {
  const { values } = parseFlags({ args: argv, options: { vocab: { type: "string", default: "150000" }, repeats: { type: "string", default: "5" }, help: { type: "boolean", default: false } } }, USAGE);
  if (values.help) return void console.log(USAGE);
  const size = Number(values.vocab);
  const repeats = Number(values.repeats);
  if (!Number.isInteger(size) || size < 256 || !Number.isInteger(repeats) || repeats < 1) throw new UsageError("bench json-mask: --vocab ≥ 256 and --repeats ≥ 1, whole numbers");
  const pieces = syntheticVocabulary(size);
  const vocab = { tokenBytes: (t: number) => pieces[t], vocabSize: size, blocked: new Set<number>() };
  const params = { type: "object", properties: { city: { type: "string" }, unit: { enum: ["celsius", "fahrenheit"] } }, required: ["city", "unit"], additionalProperties: false };
  const tools = Array.from({ length: 8 }, (_, i) => ({ type: "function" as const, function: { name: `tool_${i}`, parameters: params } }));
  const union = toolCallGrammar(tools, tools.map((t) => t.function.name));
  const cases: [string, () => JsonRecognizer, string][] = [
    ["json_object, in a string", () => new JsonObjectRecognizer(), '{"city":"Os'],
    ["json_schema, in a string", () => schemaRecognizer(params, "p"), '{"city":"Os'],
    ["json_schema, in an enum", () => schemaRecognizer(params, "p"), '{"city":"Oslo","unit":"cel'],
    ["8 tools, in a string", () => schemaRecognizer(union.jsonSchema, union.jsonSchemaPath), '{"name":"tool_3","arguments":{"city":"Os'],
    // Every branch is alive until the name tells them apart, and none is in a free string.
    ["8 tools, in the name", () => schemaRecognizer(union.jsonSchema, union.jsonSchemaPath), '{"name":"tool_'],
  ];
  const enc = new TextEncoder();
  const results = [];
  for (const [position, make, prefix] of cases) {
    const ms: Record<string, number> = {};
    for (const fast of [true, false]) {
      const r = make();
      if (!r.push(enc.encode(prefix))) throw new Error(`bench json-mask: ${position}: the prefix does not parse`);
      const mode = new JsonMode(vocab, fast ? r : triedOnly(r));
      mode.mask(new Float32Array(size)); // warm up (and build the string-safe table once)
      const t0 = performance.now();
      for (let i = 0; i < repeats; i++) mode.mask(new Float32Array(size));
      ms[fast ? "fast_path_ms" : "every_token_tried_ms"] = round((performance.now() - t0) / repeats, 2);
    }
    console.error(`  ${position}: ${ms.fast_path_ms} ms (every token tried: ${ms.every_token_tried_ms} ms)`);
    results.push({ position, ...ms });
  }
  // tool_choice "auto" outside a call: every token is tried against the bytes before it (a refusal happens when
  // a token opens a call that cannot go on, or writes text after a call).
  const named = toolCallGrammar(tools, tools.map((t) => t.function.name), { named: true });
  const grammar = schemaRecognizer(named.jsonSchema, named.jsonSchemaPath, { compact: true });
  const autoCases: [string, string][] = [
    ["auto calls, in text", "Let me check the weather. "],
    ["auto calls, after a call", `${CALL_LAYOUTS.hermes.opening}\n{"name": "tool_1", "arguments": {"city": "Oslo", "unit": "celsius"}}\n${CALL_LAYOUTS.hermes.closing}`],
  ];
  for (const [position, prefix] of autoCases) {
    const calls = new AutoToolCalls(vocab, new Set(), { opening: enc.encode(CALL_LAYOUTS.hermes.opening), closing: enc.encode(CALL_LAYOUTS.hermes.closing), grammar: () => grammar.clone(), parallel: true });
    for (const b of enc.encode(prefix)) calls.take(b); // token ids 0..255 are the single bytes
    calls.mask(new Float32Array(size));
    const t0 = performance.now();
    for (let i = 0; i < repeats; i++) calls.mask(new Float32Array(size));
    const ms = round((performance.now() - t0) / repeats, 2);
    console.error(`  ${position}: ${ms} ms`);
    results.push({ position, every_token_tried_ms: ms });
  }
  console.log(JSON.stringify({ bench: "tuneserve_json_mask", vocab: size, repeats, results }));
}
