// Tool calls in chat answers. Forced (tool_choice "required" or a named function): the runner generates the call
// under a grammar and its text is the call. Auto: the model writes text and, when it calls tools, calls in its
// chat template's format, which the runner says back (tool_call_format): Hermes-style blocks
// `<tool_call>{"name", "arguments"}</tool_call>` after any text, Llama 3.1's whole answer `{"name",
// "parameters"}` (leading-tool-call.ts), Mistral's `[TOOL_CALLS]` and a JSON array of calls after any text, or
// newer Mistral models' `[TOOL_CALLS]name[ARGS]{…}` per call after any text (named-tool-calls.ts). Both are
// shaped here as OpenAI's message.tool_calls, whole or streamed (docs/inference.md).
import type { Choice, Finish } from "./openai-response.js";
import { CALL_TAGS, isKnownCallFormat, type GenerateResponse, type ToolCallFormat } from "./runner-protocol.js";
import { rawItems, rawMember } from "./json-member.js";
import { leadingCallJson, leadingCallState } from "./leading-tool-call.js";
import { namedCalls } from "./named-tool-calls.js";

/**
 * How a chat's answer holds tool calls: the tools it may call; forced, the finish_reason of a finished call
 * (OpenAI's: "tool_calls" for required, "stop" for a named function); auto, whatever the model wrote.
 * `format`: how the model's template writes calls, as the runner said (absent: hermes, all older runners took);
 * `callIds`: with mistral_v11, whether the template writes call ids, as the runner said (absent, from a runner older
 * than the field, whose grammar let an id through under any such template: read).
 */
export type ToolCallShape = { names: string[]; finish: "tool_calls" | "stop"; auto?: boolean; /** Auto, parallel_tool_calls false: at most one call. */ single?: boolean; format?: ToolCallFormat; callIds?: boolean };

/**
 * `tools` with the calls' format the runner said back (an older runner says none: Hermes), and with mistral_v11
 * whether the template writes call ids (`callIds`, tool_call_ids). A format this API does not know (a newer
 * runner's) gives null: no calls are read, and the answer is the model's text as it came.
 */
export const withCallFormat = (tools: ToolCallShape | null, format: string | undefined, callIds?: boolean): ToolCallShape | null => {
  if (!tools || format === undefined) return tools;
  if (!isKnownCallFormat(format)) return null;
  return { ...tools, format, ...(format === "mistral_v11" && callIds !== undefined ? { callIds } : {}) };
};

/** What a runner says of how its calls are written (tool_call_format, tool_call_ids): kept with a stored answer, for its replay. */
export type SaidCallFormat = Pick<GenerateResponse, "tool_call_format" | "tool_call_ids">;

/** The fields of `said` that it has. */
export const saidCallFormat = (said: SaidCallFormat): SaidCallFormat => ({
  ...(said.tool_call_format ? { tool_call_format: said.tool_call_format } : {}),
  ...(said.tool_call_ids !== undefined ? { tool_call_ids: said.tool_call_ids } : {}),
});

/** One call as OpenAI shows it; `arguments` is the JSON text of an object. */
export type ToolCall = { id: string; type: "function"; function: { name: string; arguments: string } };
type CallBody = ToolCall["function"];

const { opening: OPEN, closing: CLOSE } = CALL_TAGS.hermes;

/** The tag that opens calls after text: Hermes's `<tool_call>` or Mistral's `[TOOL_CALLS]` (old and new). */
const openingOf = (format: ToolCallFormat | undefined) => (format === "mistral" || format === "mistral_v11" ? CALL_TAGS[format].opening : OPEN);

/** The calls after the first opening tag (`text` starts at it), in the format of `tools`; null when they do not parse. */
function callsAfterTag(text: string, tools: ToolCallShape, cut: boolean): CallBody[] | null {
  const { format, names } = tools;
  if (format === "mistral") return listedCalls(text.slice(CALL_TAGS.mistral.opening.length), names, cut);
  if (format === "mistral_v11") return namedCalls(text, names, cut, tools.callIds ?? true);
  return hermesCalls(text, names, cut);
}

/** A call's id: stable for a response, choice and call, so a replayed answer names the same calls. */
export const toolCallId = (responseId: string, index: number, call = 0) => `call_${responseId.replace(/^chatcmpl-/, "")}_${index}${call ? `_${call}` : ""}`;

/**
 * The keys a format's calls hold their arguments under, first found first: Llama 3.1's `parameters`, and
 * `arguments` that a model writes without the grammar (as vLLM's llama3_json parser reads it).
 */
const argumentKeys = (format: ToolCallFormat | undefined): readonly string[] => (format === "llama3_json" ? ["parameters", "arguments"] : ["arguments"]);

/** `{"name", "arguments"}` naming one of `names`, with the arguments as written (a string's content, if a string); null otherwise. */
function callOf(json: string, names: string[], keys: readonly string[] = ["arguments"]): CallBody | null {
  try {
    const v = JSON.parse(json) as Record<string, unknown> | null;
    if (typeof v?.name !== "string" || !names.includes(v.name)) return null;
    const key = keys.find((k) => v[k] !== undefined);
    if (key === undefined) return { name: v.name, arguments: "{}" };
    const args = v[key];
    return { name: v.name, arguments: typeof args === "string" ? args : rawMember(json, key)! };
  } catch {
    return null;
  }
}

/**
 * Hermes blocks, one after another (whitespace between): their calls, or null when anything else is there or
 * one does not parse. A last block left open is dropped when calls came before it: one without a closing
 * tag, or any when max_tokens `cut` the answer (a cut call's string may hold the closing tag).
 */
function hermesCalls(text: string, names: string[], cut: boolean): CallBody[] | null {
  const calls: CallBody[] = [];
  let rest = text.trimStart();
  while (rest !== "") {
    // max_tokens may cut the next call inside its opening tag.
    if (OPEN.startsWith(rest) && calls.length > 0) return calls;
    if (!rest.startsWith(OPEN)) return null;
    // An argument may hold the closing tag itself: the block ends at the first one after which the call parses.
    let close = rest.indexOf(CLOSE, OPEN.length);
    let call: CallBody | null = null;
    while (close >= 0 && !(call = callOf(rest.slice(OPEN.length, close), names))) close = rest.indexOf(CLOSE, close + 1);
    if (!call) return calls.length > 0 && (cut || !rest.includes(CLOSE)) ? calls : null;
    calls.push(call);
    rest = rest.slice(close + CLOSE.length).trimStart();
  }
  return calls.length > 0 ? calls : null;
}

/**
 * Mistral's calls after `[TOOL_CALLS]`: one JSON array of `{"name", "arguments"}` (an `id` beside them, as the
 * template writes history, is left out: the API names calls itself), and nothing after it; null otherwise. When
 * max_tokens `cut` the array (the text ends inside it), the calls before the cut one are kept.
 */
function listedCalls(text: string, names: string[], cut: boolean): CallBody[] | null {
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch {
    whole = null;
  }
  const { items, after } = rawItems(text);
  if (Array.isArray(whole)) {
    const calls = items.map((item) => callOf(item, names));
    return calls.length > 0 && calls.every((c) => c !== null) ? (calls as CallBody[]) : null;
  }
  // An array closed (or broken off) with more after it is text, cut or not.
  if (!cut || after !== "") return null;
  const calls: CallBody[] = [];
  for (const item of items) {
    const call = callOf(item, names);
    if (!call) break;
    calls.push(call);
  }
  return calls.length > 0 ? calls : null;
}

/**
 * The text before the calls and the calls a choice's text makes. Forced with one tool, the text is its
 * arguments (cut short, they are what was generated, as OpenAI's are); forced with several, `{"name",
 * "arguments"}` (`parameters` in Llama 3.1's format); auto, content and then Hermes blocks, or Llama 3.1's
 * one call as the whole answer. No calls when they do not parse (cut short by
 * max_tokens, or not a call): the text is then answered as content. `cut`: max_tokens ended the answer.
 */
export function callsOf(text: string, tools: ToolCallShape, cut = false): { content: string; calls: CallBody[] } {
  // A tokenizer's word-start marker may put a space before the object: not part of the arguments.
  if (!tools.auto && tools.names.length === 1) return { content: "", calls: [{ name: tools.names[0], arguments: text.trimStart() }] };
  const keys = argumentKeys(tools.format);
  // Forced among several tools in Mistral's newer format: `name[ARGS]{…}` after the prompt's [TOOL_CALLS].
  if (!tools.auto && tools.format === "mistral_v11") {
    const calls = namedCalls(CALL_TAGS.mistral_v11.opening + text, tools.names, false, tools.callIds ?? true);
    return calls ? { content: "", calls: calls.slice(0, 1) } : { content: text, calls: [] };
  }
  if (!tools.auto || tools.format === "llama3_json") {
    const json = tools.auto ? leadingCallJson(text) : text;
    const call = json === null ? null : callOf(json, tools.names, keys);
    return call ? { content: "", calls: [call] } : { content: text, calls: [] };
  }
  const open = openingOf(tools.format);
  const at = text.indexOf(open);
  const calls = at < 0 ? null : callsAfterTag(text.slice(at), tools, cut);
  if (!calls) return { content: text, calls: [] };
  return { content: text.slice(0, at), calls: tools.single ? calls.slice(0, 1) : calls };
}

const withIds = (calls: CallBody[], id: (call: number) => string) => calls.map((c, k): ToolCall => ({ id: id(k), type: "function", function: c }));

/** The assistant message of a choice: its calls (content null unless text came before them), or its text. */
export function toolMessage(ch: Choice, tools: ToolCallShape, id: (call: number) => string) {
  const { content, calls } = callsOf(ch.text, tools, ch.finish_reason === "length");
  if (calls.length === 0) return { role: "assistant" as const, content };
  return { role: "assistant" as const, content: content.trim() ? content : null, tool_calls: withIds(calls, id) };
}

/** A choice's finish_reason: forced, a finished call's; auto, "tool_calls" when it called; "length" stays. */
export function toolFinish(ch: Pick<Choice, "text" | "finish_reason">, tools: ToolCallShape): Finish {
  if (ch.finish_reason !== "stop") return ch.finish_reason;
  if (!tools.auto) return tools.finish;
  return callsOf(ch.text, tools, false).calls.length > 0 ? "tool_calls" : "stop";
}

/**
 * The stream deltas of one choice. Forced with one tool the name is known before any token: the opening delta
 * names the call and each token adds to its arguments. Forced with several, the name is known only at the end:
 * the whole call comes in one delta then. Auto: text goes out as content until `<tool_call>` begins (what may
 * be its start, and whitespace with nothing before it, is held back); from there the calls come whole at the
 * end (or the text, when they do not parse). In Llama 3.1's format a call can only begin the answer: the text
 * goes out once it begins with anything else, and an answer that begins with `{` is held to the end.
 */
export class ToolCallStream {
  private text = "";
  /** Auto: content sent so far; once a call began, the text from its tag is no longer sent. */
  private sent = 0;
  private inCall = false;
  /** Forced with one tool: whether the arguments' first non-space character has gone out (spaces before it do not). */
  private argumentsBegan = false;

  constructor(
    private readonly tools: ToolCallShape,
    private readonly id: (call: number) => string,
  ) {}

  private get argumentsAsTheyCome(): boolean {
    return !this.tools.auto && this.tools.names.length === 1;
  }

  opening(): Record<string, unknown> {
    if (this.argumentsAsTheyCome) return { role: "assistant", content: null, tool_calls: [{ index: 0, id: this.id(0), type: "function", function: { name: this.tools.names[0], arguments: "" } }] };
    return { role: "assistant", content: this.tools.auto ? "" : null };
  }

  /** A token's text: the delta to send now, or null to hold it. */
  push(text: string): Record<string, unknown> | null {
    this.text += text;
    if (this.argumentsAsTheyCome) {
      const piece = this.argumentsBegan ? text : text.trimStart();
      if (piece === "") return null;
      this.argumentsBegan = true;
      return { tool_calls: [{ index: 0, function: { arguments: piece } }] };
    }
    if (!this.tools.auto || this.inCall) return null;
    if (this.tools.format === "llama3_json") return this.pushLeading();
    const open = openingOf(this.tools.format);
    const at = this.text.indexOf(open, this.sent);
    const upTo = at >= 0 ? at : this.text.length - heldBack(this.text.slice(this.sent), open);
    this.inCall = at >= 0;
    // Whitespace alone is held too: before calls, the whole answer's content is null, not the whitespace.
    if (this.text.slice(0, upTo).trim() === "") return null;
    const out = this.text.slice(this.sent, upTo);
    this.sent = upTo;
    return out ? { content: out } : null;
  }

  /** Llama 3.1's format: everything once the answer is known to be text, nothing while it may be (or is) a call. */
  private pushLeading(): Record<string, unknown> | null {
    const state = leadingCallState(this.text);
    this.inCall = state === "call";
    if (state !== "text") return null;
    const out = this.text.slice(this.sent);
    this.sent = this.text.length;
    return out ? { content: out } : null;
  }

  /** The deltas of what is left when the choice ends (with `reason`, its finish_reason). */
  end(reason: string): Record<string, unknown>[] {
    if (this.argumentsAsTheyCome) return [];
    const { content, calls } = callsOf(this.text, this.tools, reason === "length");
    if (calls.length > 0) return [{ tool_calls: withIds(calls, this.id).map((c, index) => ({ index, ...c })) }];
    const rest = this.tools.auto ? this.text.slice(this.sent) : content;
    return rest ? [{ content: rest }] : [];
  }
}

/** How many of the text's last characters may begin the opening tag `open` (held back until the next token tells). */
function heldBack(text: string, open: string): number {
  for (let n = Math.min(open.length - 1, text.length); n > 0; n--) if (open.startsWith(text.slice(-n))) return n;
  return 0;
}
