// Tool calls on the runner: a forced call (the API's tool_choice "required" or a named function) as the grammar
// its answer follows, and where each template format puts calls (what tool_choice "auto" follows).
import { CALL_TAGS, NAMED_CALL_TAGS, type ToolSpec } from "../../../api/src/inference/runner-protocol.js";
import type { AutoCallsRequest } from "../engine/generate/sequence.js";
import type { ToolCallFormat } from "../engine/tokenizer/tool-call-format.js";
import type { TextTokenizer } from "../engine/tokenizer/tokenizer.js";
import { rootBranches } from "../engine/generate/json-schema-compile.js";
import { schemaRecognizer } from "../engine/generate/json-schema.js";

/** A function without parameters (OpenAI: parameters left out, or `{}`) takes an empty object. */
const NO_PARAMETERS = { type: "object", properties: {}, additionalProperties: false };

/**
 * Where a format puts each call in the answer: between tags (`opening`, `closing`), anywhere after text, or
 * (`leading`) as the whole answer, a `{` before any other text opening it (after `leadingTag`, where the model
 * spells that out as text: the API reads a call after it, so the runner holds it too); `list`: after the
 * opening tag, all the calls in one JSON array; `prefix`: what a forced call starts with before the call's
 * object; and the key of the call's arguments. `named`: each call is `name[ARGS]{arguments}` after its own
 * opening tag (Mistral's newer templates, named-call.ts), `callTags` the tags within it, which tool_choice "auto"
 * keeps in the text as it keeps the opening tag (and `[CALL_ID]` where the template writes call ids: callTagsOf). `idKey`: the template writes an `"id"` beside each call's name
 * and arguments in history (Mistral's v3), so a model trained on it writes one too: the grammar lets it (9 letters
 * or digits, as the template wants, held by call-id.ts: the schema subset has no pattern), and the API leaves it
 * out, naming calls itself.
 */
export type CallLayout = {
  opening: string;
  closing: string;
  leading: boolean;
  leadingTag?: string;
  list: boolean;
  named?: boolean;
  callTags?: string[];
  idKey?: boolean;
  prefix: string;
  argumentsKey: "arguments" | "parameters";
};

export const CALL_LAYOUTS: Record<ToolCallFormat, CallLayout> = {
  hermes: { opening: CALL_TAGS.hermes.opening, closing: CALL_TAGS.hermes.closing, leading: false, list: false, prefix: `${CALL_TAGS.hermes.opening}\n`, argumentsKey: "arguments" },
  // Meta's templates write one call per turn, as the whole message: `{"name": …, "parameters": …}`.
  llama3_json: { opening: "", closing: "", leading: true, leadingTag: CALL_TAGS.llama3_json.leadingTag, list: false, prefix: "", argumentsKey: "parameters" },
  // Mistral's v3 template: `[TOOL_CALLS] [{"name": …, "arguments": …, "id": …}, …]` (the id in the history it renders).
  mistral: { opening: CALL_TAGS.mistral.opening, closing: "", leading: false, list: true, idKey: true, prefix: `${CALL_TAGS.mistral.opening} [`, argumentsKey: "arguments" },
  // Mistral's tokenizer v11+ templates: `[TOOL_CALLS]name[ARGS]{…}` per call (`[CALL_ID]id` before [ARGS] in those that write ids).
  mistral_v11: { opening: CALL_TAGS.mistral_v11.opening, closing: "", leading: false, list: false, named: true, callTags: [NAMED_CALL_TAGS.args], prefix: CALL_TAGS.mistral_v11.opening, argumentsKey: "arguments" },
};

/**
 * The JSON Schema a call of `names` follows: with one name, the tool's parameters (the answer is its
 * arguments) unless `named`; with several, or `named`, an anyOf of `{"name": <const>, "arguments": <its parameters>}` (a tool whose
 * parameters are an anyOf of objects gives a branch for each; the key is `parameters` in a Llama 3.1 `format`, and an
 * optional `id` may follow in a Mistral v3 one, `jsonCallId` then saying to hold it to 9 letters or digits). Throws
 * naming `tools.<i>.function.parameters…` for what the grammar cannot enforce.
 */
export function toolCallGrammar(tools: ToolSpec[], names: string[], o: { named?: boolean; format?: ToolCallFormat | null } = {}): { jsonSchema: Record<string, unknown>; jsonSchemaPath: string; jsonCompact: true; jsonCallId?: true } {
  // Inside `{"name", "arguments"}`, the parameters sit one level down: checked there, so errors name the tool.
  const wrapped = names.length > 1 || o.named === true;
  const called = names.map((name) => {
    const i = tools.findIndex((t) => t.function.name === name);
    if (i < 0) throw new Error(`tool_names: ${name} is not one of the tools`);
    const given = tools[i].function.parameters;
    const schema = given && Object.keys(given).length > 0 ? given : NO_PARAMETERS;
    const path = `tools.${i}.function.parameters`;
    schemaRecognizer(schema, path, { depth: wrapped ? 2 : 1 });
    return { name, schema, path };
  });
  // Spaced as the templates' tojson writes calls: no model needs newlines or runs of spaces in a call.
  if (called.length === 1 && !o.named) return { jsonSchema: called[0].schema, jsonSchemaPath: called[0].path, jsonCompact: true };
  const key = o.format ? CALL_LAYOUTS[o.format].argumentsKey : "arguments";
  const idKey = o.format ? CALL_LAYOUTS[o.format].idKey === true : false;
  const id = idKey ? { id: { type: "string" } } : {};
  const call = (name: string, args: unknown) => ({
    type: "object",
    properties: { name: { const: name }, [key]: args, ...id },
    required: ["name", key],
    additionalProperties: false,
  });
  const branches = called.flatMap(({ name, schema }) => (rootBranches(schema) ?? [schema]).map((args) => call(name, args)));
  return { jsonSchema: branches.length === 1 ? branches[0] : { anyOf: branches }, jsonSchemaPath: "tools", jsonCompact: true, ...(idKey ? { jsonCallId: true as const } : {}) };
}

/**
 * tool_choice "auto": the grammar of each call the model may write, `{"name", "arguments"}` (`parameters` in
 * Llama 3.1's format) for `names`; null
 * when a tool's parameters use what the grammar cannot enforce, and the calls are then read as written,
 * unless a tool is `strict` (its calls must follow them): then it throws, naming what cannot be enforced.
 */
export function autoCallGrammar(tools: ToolSpec[], names: string[], format: ToolCallFormat = "hermes"): { jsonSchema: Record<string, unknown>; jsonSchemaPath: string } | null {
  try {
    const { jsonSchema, jsonSchemaPath } = toolCallGrammar(tools, names, { named: true, format });
    return { jsonSchema, jsonSchemaPath };
  } catch (err) {
    // A strict tool's own parameters must be enforceable; another tool's failing leaves the calls unchecked.
    for (const t of tools) if (t.function.strict && names.includes(t.function.name)) toolCallGrammar(tools, [t.function.name], { named: true, format });
    return null;
  }
}

/**
 * The tags written inside a call in `format` (Mistral's newer [ARGS]), with `[CALL_ID]` where the template writes
 * call ids (`callIds`, TextTokenizer.writesCallIds): what the grammar takes there and the text keeps.
 */
export function callTagsOf(format: ToolCallFormat | null, callIds: boolean): string[] {
  const layout = format ? CALL_LAYOUTS[format] : null;
  if (!layout?.named) return [];
  return callIds ? [...layout.callTags!, NAMED_CALL_TAGS.callId] : layout.callTags!;
}

/**
 * tool_choice "auto"'s calls (their grammar, and whether several may come) where the template's `format` puts
 * them; `callIds`: the template writes call ids, so a call may hold one (Mistral's newer format).
 */
export function autoCallsIn(format: ToolCallFormat | null, calls: { jsonSchema: Record<string, unknown>; jsonSchemaPath: string; parallel: boolean }, callIds = false): AutoCallsRequest {
  if (!format) throw new Error("tool calls: this model's chat template writes no tool-call format this server reads");
  const { opening, closing, leading, leadingTag, list, named } = CALL_LAYOUTS[format];
  // A call that is the whole answer (Llama 3.1's) is the only one.
  return { ...calls, opening, closing, leading, ...(leadingTag ? { leadingTag } : {}), list, ...(named ? { named, callTags: callTagsOf(format, callIds), callIds } : {}), parallel: calls.parallel && !leading };
}

/**
 * The start of a forced call in the template's own format, put after the generation prompt so that the model
 * writes the call as it was trained to: for Hermes-style templates `<tool_call>\n` and, with one tool, its
 * name up to the arguments (`{"name": "f", "arguments": `, spaced as the templates' tojson writes it); the
 * grammar then takes the arguments, or `{"name", "arguments"}`. Llama 3.1's: with one tool `{"name": "f",
 * "parameters": `, with several nothing (the call is the answer's JSON); Mistral's `[TOOL_CALLS] [` first. Mistral's
 * newer ones: with one tool `[TOOL_CALLS]name[ARGS]`, with several `[TOOL_CALLS]` (forcedCallInFormat). Nothing for templates without a known format.
 */
export function toolCallOpening(format: ToolCallFormat | null, names: string[]): string {
  if (format === null) return "";
  const { prefix, argumentsKey, named, opening } = CALL_LAYOUTS[format];
  if (named) return names.length === 1 ? `${opening}${names[0]}${NAMED_CALL_TAGS.args}` : prefix;
  return names.length === 1 ? `${prefix}{"name": ${JSON.stringify(names[0])}, "${argumentsKey}": ` : prefix;
}

/**
 * Whether a forced call of `names` is held in the template's own format rather than as JSON: a call among several
 * tools where calls are `name[ARGS]{…}` (Mistral's newer templates), which no JSON names. The runner then holds it
 * with the calls' grammar of "auto", opened by the prompt's `[TOOL_CALLS]` and ending the answer.
 */
export const forcedCallInFormat = (format: ToolCallFormat | null, names: string[]): boolean => format !== null && CALL_LAYOUTS[format].named === true && names.length > 1;

/**
 * Whether an answer's text keeps the template's call tags where the tokenizer marks them special: the API reads
 * calls by them under "auto" (with a grammar on the calls or without) and in a forced call held in the format.
 */
export const keepsCallTags = (req: { format?: string; autoCalls?: unknown }): boolean => req.format === "tool_auto" || req.autoCalls !== undefined;

/**
 * tool_choice "none" with tools listed (response format text): the text a model must not write, so that one
 * trained to call cannot open a call in its template's format; undefined when the format is unknown. The tag
 * without its `>`: a model kept from `<tool_call>` would otherwise write `<tool_calll>` or `<tool_call` and a
 * stray byte, and a call after it. A Llama 3.1 call has no tag (it is a JSON answer, which text may be too, so
 * `{` stays free), but Llama 3 models open one with the special token `<|python_tag|>`: that is banned where
 * `tok` has it as a special token (whole, which bans the token; its text spelled out goes too, harmlessly).
 */
export function noCallText(format: ToolCallFormat | null, tok?: Pick<TextTokenizer, "specialTokenIds" | "tokenBytes">): string | undefined {
  if (format === null) return undefined;
  const { opening, leadingTag } = CALL_LAYOUTS[format];
  if (opening) return opening.slice(0, -1);
  return leadingTag && tok && hasSpecialToken(tok, leadingTag) ? leadingTag : undefined;
}

/** Whether one of `tok`'s special tokens spells `text`. */
function hasSpecialToken(tok: Pick<TextTokenizer, "specialTokenIds" | "tokenBytes">, text: string): boolean {
  const utf8 = new TextDecoder();
  return [...tok.specialTokenIds].some((id) => utf8.decode(tok.tokenBytes(id)) === text);
}

/** tool_choice "auto" reads the calls the model writes, so the chat template must write them in a format this server parses. */
export function assertReadableToolCalls(format: ToolCallFormat | null): asserts format is ToolCallFormat {
  if (format !== null) return;
  throw new Error('tool_choice: "auto" needs a chat template that writes tool calls in a format this server reads (<tool_call> blocks, as Qwen2.5\'s and the built-in model\'s do, Llama 3.1\'s JSON calls with "parameters", Mistral\'s [TOOL_CALLS] and an array of calls, or the [TOOL_CALLS]name[ARGS] calls of newer Mistral models), and this model\'s does not; send "required" or {"type":"function","function":{"name":…}}, or "none"');
}
