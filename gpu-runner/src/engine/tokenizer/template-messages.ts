// Chat messages as chat templates read them: an assistant turn's tool calls carry their arguments as an object
// where they parse (Hugging Face templates apply tojson to them), and a turn without content has "".
import type { ChatMessage } from "./tokenizer.js";

/** A message as the API and training files have it (OpenAI's shape). */
export type SourceMessage = {
  role: string;
  content?: string | null;
  tool_calls?: { id: string; type: "function"; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
};

/** Messages for the chat template: a call's arguments as an object where they parse (as Hugging Face templates expect), else as sent. */
export function templateMessages(messages: SourceMessage[]): ChatMessage[] {
  return messages.map((m) => {
    const content = m.content ?? "";
    if (!m.tool_calls) return m.content === content ? (m as ChatMessage) : { ...m, content };
    return { ...m, content, tool_calls: m.tool_calls.map((c) => ({ ...c, function: { name: c.function.name, arguments: parsedArguments(c.function.arguments) } })) };
  });
}

/** A tool as the API and training files have it (OpenAI's shape). */
export type SourceTool = { type: "function"; function: { name: string; strict?: boolean | null } & Record<string, unknown> };

/** Tools for the chat template: `strict` is the server's to enforce, not the model's to read (training and serving render them alike). */
export function templateTools(tools: SourceTool[] | undefined): SourceTool[] | undefined {
  return tools?.map((t) => {
    if (t.function.strict === undefined) return t;
    const { strict: _strict, ...f } = t.function;
    return { ...t, function: f };
  });
}

function parsedArguments(text: string): unknown {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? v : text;
  } catch {
    return text;
  }
}
