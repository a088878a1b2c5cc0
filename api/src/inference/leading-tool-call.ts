// Llama 3.1's tool calls (tool_call_format llama3_json): the whole answer is one JSON object `{"name": …,
// "parameters": …}`, after whitespace and, for some models, the text `<|python_tag|>` (a special token that the
// runner leaves out of the text where the tokenizer has it). How an answer starts tells whether it can be a call.
import { CALL_TAGS } from "./runner-protocol.js";

const PYTHON_TAG = CALL_TAGS.llama3_json.leadingTag;

/**
 * The text without its leading spaces, tabs and newlines: the whitespace the runner lets come before a call
 * (auto-tool-calls.ts). Not String.trimStart's Unicode spaces: after a no-break space the runner leaves the
 * answer free, so an object after one was never held to the tools' grammar and is text.
 */
const skipSpace = (text: string) => text.replace(/^[ \t\n\r]+/, "");

/**
 * Where an answer's text stands: "call" once it begins with `{` (after whitespace and the python tag), "text"
 * once it begins with anything else (no call can follow), "open" while it is only what may come before a call.
 */
export function leadingCallState(text: string): "call" | "text" | "open" {
  let rest = skipSpace(text);
  if (rest.startsWith(PYTHON_TAG)) rest = skipSpace(rest.slice(PYTHON_TAG.length));
  else if (rest !== "" && PYTHON_TAG.startsWith(rest)) return "open";
  if (rest === "") return "open";
  return rest.startsWith("{") ? "call" : "text";
}

/** The JSON text of the call an answer makes (what follows the whitespace and python tag), or null when it does not begin with `{`. */
export function leadingCallJson(text: string): string | null {
  if (leadingCallState(text) !== "call") return null;
  return text.slice(text.indexOf("{"));
}
