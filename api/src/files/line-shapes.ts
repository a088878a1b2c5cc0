// The shapes a fine-tuning JSONL line may have: chat, prompt/completion and text for supervised
// fine-tuning, and preference pairs for DPO. One source of truth for uploads (jsonl.ts) and the engine,
// which reads user files directly.
import { z } from "zod";
import { MAX_TOOLS, toolCallSchema, toolSchema } from "../inference/runner-protocol.js";
import { historyIssues, report, turnIssues, unansweredIssues } from "../inference/tool-turns.js";
import { messageContentOf } from "../inference/message-content.js";

export const fileFormats = ["chat", "prompt_completion", "text", "preference"] as const;
export type FileFormat = (typeof fileFormats)[number];

const chatMessage = z
  .object({
    // OpenAI's developer role is its system turn, as in a chat completion request (v1_chat_completions.ts).
    role: z
      .enum(["system", "developer", "user", "assistant", "tool"], { error: "role must be system, developer, user, assistant or tool" })
      .transform((r) => (r === "developer" ? "system" : r)),
    // Left out or null only on an assistant turn that calls tools (OpenAI's format). An array of text parts
    // (as a chat request may send, and OpenAI's fine-tuning files hold) is joined with newlines, as for a request.
    // (A string keeps no cap of its own, so files stored before arrays were read still train.)
    content: messageContentOf().nullish(),
    tool_calls: z.array(toolCallSchema).min(1).max(MAX_TOOLS).optional(),
    tool_call_id: z.string().min(1).max(256).optional(),
    /** OpenAI's: whether an assistant turn is trained on (1, the default) or only context (0). */
    weight: z.union([z.literal(0), z.literal(1)], { error: "must be 0 (do not train on this turn) or 1" }).optional(),
    /** OpenAI's participant name: accepted, and not shown to the model (as in a chat completion request). */
    name: z.string().max(64).optional(),
  })
  // Other keys (say an exported chat's "refusal": null) are dropped, as before `weight` was read: files stored
  // then still train, and a runner reads what the API let in.
  .superRefine((m, ctx) => {
    report(ctx, turnIssues(m));
    if (m.weight !== undefined && m.role !== "assistant") ctx.addIssue({ code: "custom", path: ["weight"], message: "applies to assistant turns only" });
    m.tool_calls?.forEach((c, i) => {
      if (!isJsonObject(c.function.arguments)) ctx.addIssue({ code: "custom", path: ["tool_calls", i, "function", "arguments"], message: "must be the JSON text of an object (it is what the model learns to write)" });
    });
  });

const isJsonObject = (text: string) => {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v);
  } catch {
    return false;
  }
};

export const chatLine = z
  .object({
    messages: z
      .array(chatMessage)
      .min(1)
      .refine((m) => m.some((x) => x.role === "assistant" && x.weight !== 0), "needs at least one assistant message to train on (one without weight 0)"),
    /** The tools the chat template lists for the model, as in a chat completion request. */
    tools: z.array(toolSchema).max(MAX_TOOLS).optional(),
    functions: z.never({ error: "functions is OpenAI's deprecated form of tools; send tools" }).optional(),
  })
  // As in a chat completion request; and the calls the model learns name the line's tools.
  .superRefine((line, ctx) => {
    report(ctx, historyIssues(line.messages, line.tools?.map((t) => t.function.name) ?? null));
    // The template shows the model the tools it learns to call.
    if (!line.tools?.length && line.messages.some((m) => m.tool_calls)) ctx.addIssue({ code: "custom", path: ["tools"], message: "a line with tool calls lists its tools" });
  });
export const promptCompletionLine = z.object({
  prompt: z.string(),
  completion: z.string().min(1, "must not be empty: it is what the model learns to produce"),
});
export const textLine = z.object({ text: z.string().min(1, "must not be empty") });

/** One answer of a preference pair: a single assistant turn (text, or tool calls). */
const preferenceOutput = z
  .array(chatMessage)
  // abort: the refinements below read m[0], which an empty array lacks.
  .length(1, { error: "must hold exactly one assistant message", abort: true })
  .refine((m) => m[0].role === "assistant", "must be an assistant message")
  .refine((m) => !!m[0].content || !!m[0].tool_calls?.length, "the assistant message needs non-empty content or tool_calls")
  .refine((m) => m[0].weight === undefined, "weight is for chat lines: a preference answer is always scored");

/** What of an answer the chat template shows the model: not its tool calls' ids, nor a participant name. */
const renderedAnswer = (m: z.infer<typeof chatMessage>) => ({ content: m.content ?? "", calls: m.tool_calls?.map((c) => c.function) ?? null });

/** OpenAI's DPO line: a conversation, the answer to prefer and the answer not to. */
export const preferenceLine = z
  .object({
    input: z
      .object({
        messages: z.array(chatMessage).min(1),
        tools: z.array(toolSchema).max(MAX_TOOLS).optional(),
        parallel_tool_calls: z.boolean().optional(),
      })
      .strict(),
    preferred_output: preferenceOutput,
    non_preferred_output: preferenceOutput,
  })
  .superRefine((line, ctx) => {
    const names = line.input.tools?.map((t) => t.function.name) ?? null;
    const n = line.input.messages.length;
    const inputIssues = [...historyIssues(line.input.messages, names), ...unansweredIssues(line.input.messages)];
    report(ctx, inputIssues.map((i) => ({ ...i, path: ["input", ...i.path] })));
    // The outputs are the model's next turn: an input that ends on the assistant's own turn has no question for them to answer.
    if (line.input.messages[n - 1]?.role === "assistant") ctx.addIssue({ code: "custom", path: ["input", "messages", n - 1, "role"], message: "the input ends on an assistant turn; it should end on the user (or tool) turn that preferred_output and non_preferred_output answer" });
    for (const key of ["preferred_output", "non_preferred_output"] as const) {
      // Each answer must continue the input as a chat line's next turn would.
      const answer = historyIssues([...line.input.messages, ...line[key]], names).filter((i) => i.path[0] === "messages" && i.path[1] === n);
      report(ctx, answer.map((i) => ({ ...i, path: [key, 0, ...i.path.slice(2)] })));
      if (!line.input.tools?.length && line[key][0].tool_calls) ctx.addIssue({ code: "custom", path: ["input", "tools"], message: "a line with tool calls lists its tools" });
    }
    if (JSON.stringify(renderedAnswer(line.preferred_output[0])) === JSON.stringify(renderedAnswer(line.non_preferred_output[0]))) {
      ctx.addIssue({ code: "custom", path: ["non_preferred_output"], message: "is the same as preferred_output; a pair teaches a preference only when its answers differ" });
    }
  });

export const lineSchemas: Record<FileFormat, z.ZodType> = { chat: chatLine, prompt_completion: promptCompletionLine, text: textLine, preference: preferenceLine };

/**
 * Rules an upload is checked against beyond its line's shape, which the engine does not apply again: files
 * stored before a rule existed still train. Each returns the first problem as `field: message`, or null.
 */
export const uploadRules: Partial<Record<FileFormat, (line: unknown) => string | null>> = {
  // A trained assistant turn with no text and no calls teaches the model to end its turn at once, as an
  // empty completion or preference answer would (both refused by their shapes).
  chat: (line) => {
    const { messages } = line as z.infer<typeof chatLine>;
    const i = messages.findIndex((m) => m.role === "assistant" && m.weight !== 0 && !m.tool_calls?.length && !m.content?.trim());
    if (i >= 0) return `messages.${i}.content: an assistant turn that is trained on needs non-empty content (or tool_calls); write its answer, or give it "weight": 0 to keep it as context`;
    return lossyArguments(messages, "messages");
  },
  preference: (line) => {
    const l = line as z.infer<typeof preferenceLine>;
    return lossyArguments(l.input.messages, "input.messages") ?? lossyArguments(l.preferred_output, "preferred_output") ?? lossyArguments(l.non_preferred_output, "non_preferred_output");
  },
};

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Where the first string of a parsed line (a value or a key) holds half of a surrogate pair alone, as a
 * `\ud83d` escape cut from its emoji does: not Unicode text, and the tokenizer would train on U+FFFD instead.
 */
export function loneSurrogateAt(v: unknown, path: (string | number)[] = []): string | null {
  if (typeof v === "string") return LONE_SURROGATE.test(v) ? path.join(".") || "(line)" : null;
  if (v === null || typeof v !== "object") return null;
  for (const [k, x] of Array.isArray(v) ? v.entries() : Object.entries(v)) {
    const at = LONE_SURROGATE.test(String(k)) ? [...path, k].join(".") : loneSurrogateAt(x, [...path, k]);
    if (at !== null) return at;
  }
  return null;
}

/**
 * The first tool call whose arguments hold a number the chat template cannot write back as sent: templates
 * render arguments from their parsed value, so 1e400 becomes null and 12345678901234567891 becomes
 * 12345678901234567000, and the model would learn to write those.
 */
function lossyArguments(messages: z.infer<typeof chatMessage>[], at: string): string | null {
  for (const [i, m] of messages.entries()) {
    for (const [k, c] of (m.tool_calls ?? []).entries()) {
      const n = lossyNumber(c.function.arguments);
      if (n !== null) return `${at}.${i}.tool_calls.${k}.function.arguments: the number ${n.slice(0, 40)} cannot be kept exactly (${Number.isFinite(Number(n)) ? "an integer beyond ±2^53" : "out of range"}); write it as a string`;
    }
  }
  return null;
}

/** The first number literal of a JSON text that parsing changes: out of double range, or an integer past 2^53. */
export function lossyNumber(json: string): string | null {
  // Strings first, so digits inside them are skipped.
  for (const [, lit] of json.matchAll(/"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g)) {
    if (lit === undefined) continue;
    const v = Number(lit);
    if (!Number.isFinite(v) || (/^-?\d+$/.test(lit) && !Number.isSafeInteger(v))) return lit;
  }
  return null;
}


/** What the error for a line of no known shape says. */
export const RECORD_EXAMPLES = '{"messages":[…]}, {"prompt":…,"completion":…}, {"text":…} or {"input":…,"preferred_output":…,"non_preferred_output":…}';
export const NO_FORMAT = "has none of the keys 'messages', 'prompt'/'completion', 'text' or 'input'/'preferred_output'/'non_preferred_output'";

/** Which shape a parsed line claims to be, from its keys; null when it names none of them. */
export function detectFormat(v: Record<string, unknown>): FileFormat | null {
  if ("messages" in v) return "chat";
  if ("input" in v || "preferred_output" in v || "non_preferred_output" in v) return "preference";
  if ("prompt" in v || "completion" in v) return "prompt_completion";
  if ("text" in v) return "text";
  return null;
}

