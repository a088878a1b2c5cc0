// The rules of tool turns that chat requests and fine-tuning lines share (OpenAI's chat format), as zod issues.
import type { z } from "zod";

type Turn = { role: string; content?: string | null; tool_calls?: { id: string; function: { name: string } }[] | null; tool_call_id?: string | null };
type Issue = { path: (string | number)[]; message: string };

/** One message: content unless it is an assistant turn that calls tools; calls only from the assistant; tool_call_id on tool turns only. */
export function turnIssues(m: Turn): Issue[] {
  const out: Issue[] = [];
  if (m.content == null && !(m.role === "assistant" && m.tool_calls?.length)) out.push({ path: ["content"], message: "content is required (only an assistant turn with tool_calls may leave it out)" });
  if (m.tool_calls?.length && m.role !== "assistant") out.push({ path: ["tool_calls"], message: "only assistant turns have tool_calls" });
  if ((m.role === "tool") !== (m.tool_call_id != null)) out.push({ path: ["tool_call_id"], message: "a tool turn, and only a tool turn, names the call it answers in tool_call_id" });
  return out;
}

/** A conversation: each tool turn answers a call an earlier turn made; with `names`, every call names one of them. */
export function historyIssues(messages: Turn[], names: string[] | null): Issue[] {
  const out: Issue[] = [];
  const calls = new Set<string>();
  messages.forEach((m, i) => {
    m.tool_calls?.forEach((c, k) => {
      calls.add(c.id);
      if (names && !names.includes(c.function.name)) out.push({ path: ["messages", i, "tool_calls", k, "function", "name"], message: `${c.function.name} is not one of the tools` });
    });
    if (m.role === "tool" && m.tool_call_id != null && !calls.has(m.tool_call_id)) out.push({ path: ["messages", i, "tool_call_id"], message: `no earlier assistant turn made the call ${m.tool_call_id}` });
  });
  return out;
}

/**
 * A chat request's history, as OpenAI checks it: every call an assistant turn makes is answered by a `tool`
 * turn before the next turn of another role, or the end (the model would otherwise go on without the result).
 * Not for training files, where a line may end on the calls the model learns to make.
 */
export function unansweredIssues(messages: Turn[]): Issue[] {
  const out: Issue[] = [];
  let open: { at: number; ids: Set<string> } | null = null;
  const close = () => {
    if (open?.ids.size) out.push({ path: ["messages", open.at, "tool_calls"], message: `the calls ${[...open.ids].join(", ")} have no tool turn answering them before the next turn; add a {"role":"tool","tool_call_id":…} message for each` });
    open = null;
  };
  messages.forEach((m, i) => {
    if (m.role === "tool") return void open?.ids.delete(m.tool_call_id ?? "");
    close();
    if (m.tool_calls?.length) open = { at: i, ids: new Set(m.tool_calls.map((c) => c.id)) };
  });
  close();
  return out;
}

/** Adds the issues to a zod refinement. */
export const report = (ctx: z.RefinementCtx, issues: Issue[]) => issues.forEach((i) => ctx.addIssue({ code: "custom", ...i }));
