// Forced tool calls in chat answers (tool_choice "required" or a named function): the runner generates the call
// under a grammar (docs/inference.md), and this shapes its text as OpenAI's message.tool_calls, whole or streamed.
import type { Choice, Finish } from "./openai.js";

/** A forced call: the tools it may call, and the finish_reason of a finished call (OpenAI's: "tool_calls" for required, "stop" for a named function). */
export type ToolCallShape = { names: string[]; finish: "tool_calls" | "stop" };

/** One call as OpenAI shows it; `arguments` is the JSON text of an object. */
export type ToolCall = { id: string; type: "function"; function: { name: string; arguments: string } };

/** The call's id: stable for a response and choice, so a replayed answer names the same call. */
export const toolCallId = (responseId: string, index: number) => `call_${responseId.replace(/^chatcmpl-/, "")}_${index}`;

/**
 * The call a choice's text makes: with one tool, the text is its arguments (cut short, they are what was
 * generated, as OpenAI's are); with several, the text is `{"name", "arguments"}`, or null when max_tokens cut it
 * short before it parsed (the text is then answered as content).
 */
export function toolCallOf(text: string, names: string[], id: string): ToolCall | null {
  if (names.length === 1) return { id, type: "function", function: { name: names[0], arguments: text } };
  try {
    const parsed = JSON.parse(text) as { name?: unknown; arguments?: unknown };
    if (typeof parsed.name !== "string" || !names.includes(parsed.name)) return null;
    return { id, type: "function", function: { name: parsed.name, arguments: JSON.stringify(parsed.arguments ?? {}) } };
  } catch {
    return null;
  }
}

/** A finished call's finish_reason; a call cut short by max_tokens stays "length". */
export const toolFinish = (reason: Finish, tools: ToolCallShape): Finish => (reason === "stop" ? tools.finish : reason);

/** The assistant message of a choice: its tool call, or its text when it holds no call. */
export function toolMessage(ch: Choice, tools: ToolCallShape, id: string) {
  const call = toolCallOf(ch.text, tools.names, id);
  return call ? { role: "assistant" as const, content: null, tool_calls: [call] } : { role: "assistant" as const, content: ch.text };
}

/**
 * Stream deltas of a call. With one tool the name is known before any token: the opening delta names the call
 * and each token's text adds to its arguments. With several, the name is known only at the end: the opening
 * delta has no call, and the whole call (or the text, when it does not parse) comes in one delta at the end.
 */
export const toolDeltas = {
  opening: (tools: ToolCallShape, id: string) =>
    tools.names.length === 1
      ? { role: "assistant" as const, content: null, tool_calls: [{ index: 0, id, type: "function" as const, function: { name: tools.names[0], arguments: "" } }] }
      : { role: "assistant" as const, content: null },
  /** Tokens' text: arguments with one tool; held back (null) with several. */
  text: (tools: ToolCallShape, text: string) => (tools.names.length === 1 ? { tool_calls: [{ index: 0, function: { arguments: text } }] } : null),
  /** The end of a choice's text: with several tools, the whole call (or its text); nothing to add with one. */
  end: (tools: ToolCallShape, text: string, id: string) => {
    if (tools.names.length === 1) return null;
    const call = toolCallOf(text, tools.names, id);
    return call ? { tool_calls: [{ index: 0, ...call }] } : { content: text };
  },
};
