// Mistral's newer calls (tool_call_format mistral_v11, tokenizer v11+): after any text, each call as
// `[TOOL_CALLS]name[ARGS]{arguments}`, one after another, `[CALL_ID]` and an id of 9 letters or digits before [ARGS]
// where the template writes ids, and only there (left out here: the API names calls itself). Read back as the runner's grammar
// writes them (gpu-runner/src/engine/generate/named-call.ts).
import { CALL_TAGS, MISTRAL_CALL_ID, NAMED_CALL_TAGS } from "./runner-protocol.js";
import { valueEnd } from "./json-member.js";

const OPEN = CALL_TAGS.mistral_v11.opening;
const { args: ARGS, callId: CALL_ID } = NAMED_CALL_TAGS;

/** A call's name and the JSON text of its arguments, as OpenAI shows them. */
type CallBody = { name: string; arguments: string };

/** Whether `json` is the text of a JSON object. */
function isObjectText(json: string): boolean {
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/**
 * The call at the start of `text` (just after its [TOOL_CALLS]) naming one of `names`, and where it ends; "cut" when
 * the text ends where a call could still go on (max_tokens cut it), null when it is not a call. A space or newline
 * may come before the name, as the runner's grammar lets one; `[CALL_ID]` and an id only with `callIds`.
 */
function callAt(text: string, names: string[], callIds: boolean): { call: CallBody; end: number } | "cut" | null {
  const head = /^[ \n]?([A-Za-z0-9_-]{0,64})/.exec(text)!;
  const name = head[1];
  let at = head[0].length;
  if (at === text.length) return names.some((n) => n.startsWith(name)) ? "cut" : null;
  if (!names.includes(name)) return null;
  const rest = text.slice(at);
  if ((callIds && CALL_ID.startsWith(rest)) || ARGS.startsWith(rest)) return "cut";
  if (callIds && rest.startsWith(CALL_ID)) {
    const id = /^[A-Za-z0-9]{0,9}/.exec(rest.slice(CALL_ID.length))![0];
    at += CALL_ID.length + id.length;
    if (at === text.length || (id.length === 9 && ARGS.startsWith(text.slice(at)))) return "cut";
    if (!MISTRAL_CALL_ID.test(id)) return null;
  }
  if (!text.startsWith(ARGS, at)) return null;
  at += ARGS.length;
  if (at === text.length) return "cut";
  if (text[at] !== "{") return null;
  const end = valueEnd(text, at);
  const json = text.slice(at, end);
  if (isObjectText(json)) return { call: { name, arguments: json }, end };
  return end === text.length ? "cut" : null;
}

/**
 * The calls of `text`, which starts at the first [TOOL_CALLS]: each call after its own tag, whitespace between and
 * after them; null when anything else is there, so that the whole answer is text (as with the other formats).
 * When max_tokens `cut` the answer inside a call, or inside the tag of the next, the calls before it are kept.
 * `callIds`: the template writes call ids, so a call may hold one.
 */
export function namedCalls(text: string, names: string[], cut: boolean, callIds: boolean): CallBody[] | null {
  const calls: CallBody[] = [];
  let rest = text;
  while (rest !== "") {
    const cutHere = () => (cut && calls.length > 0 ? calls : null);
    if (!rest.startsWith(OPEN)) return OPEN.startsWith(rest) ? cutHere() : null;
    const found = callAt(rest.slice(OPEN.length), names, callIds);
    if (found === null) return null;
    if (found === "cut") return cutHere();
    calls.push(found.call);
    rest = rest.slice(OPEN.length + found.end).trimStart();
  }
  return calls.length > 0 ? calls : null;
}
