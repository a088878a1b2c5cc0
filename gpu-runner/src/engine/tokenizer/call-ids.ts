// Tool-call ids as Mistral's chat templates want them: exactly 9 letters or digits (the template raises on any
// other, and OpenAI's ids, `call_…`, and this API's, `call_<request>_<choice>`, are longer). Others are renamed
// for the template, the same in a call and in the tool turn answering it; the model only needs them to match.
import type { ChatMessage } from "./tokenizer.js";

const NINE = /^[A-Za-z0-9]{9}$/;

/**
 * `messages` with every call id that is not 9 letters or digits renamed `c` + 8 digits (by order of first use,
 * skipping ids the messages already hold), in calls and in `tool_call_id` alike: a conversation renders the same
 * way each time, and one that grows keeps its start.
 */
export function nineCharacterCallIds(messages: ChatMessage[]): ChatMessage[] {
  const ids = messages.flatMap((m) => [...(m.tool_calls ?? []).map((c) => (c as { id?: unknown }).id), m.tool_call_id]).filter((id): id is string => typeof id === "string");
  if (ids.every((id) => NINE.test(id))) return messages;
  const taken = new Set(ids.filter((id) => NINE.test(id)));
  const renamed = new Map<string, string>();
  let next = 0;
  const rename = (id: string): string => {
    if (NINE.test(id)) return id;
    let to = renamed.get(id);
    if (to === undefined) {
      do to = `c${String(++next).padStart(8, "0")}`;
      while (taken.has(to));
      renamed.set(id, to);
    }
    return to;
  };
  return messages.map((m) => {
    const calls = m.tool_calls?.map((c) => {
      const id = (c as { id?: unknown }).id;
      return typeof id === "string" ? { ...(c as object), id: rename(id) } : c;
    });
    return { ...m, ...(calls ? { tool_calls: calls } : {}), ...(m.tool_call_id !== undefined ? { tool_call_id: rename(m.tool_call_id) } : {}) };
  });
}
