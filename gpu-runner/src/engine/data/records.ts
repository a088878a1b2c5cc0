// Training records from a JSONL file: chat ({"messages":[…]}), prompt/completion, or raw text. The API
// validated uploads already; the CLI reads user files directly, so every line is checked again here.
import { readFile } from "node:fs/promises";
import type { z } from "zod";
// The line shapes are the API's own (one source of truth for what an upload may hold).
import { chatLine, promptCompletionLine, textLine } from "../../../../api/src/files/jsonl.js";

export type TrainRecord =
  | { format: "chat"; messages: z.infer<typeof chatLine>["messages"]; tools?: z.infer<typeof chatLine>["tools"] }
  | { format: "prompt_completion"; prompt: string; completion: string }
  | { format: "text"; text: string };
export type RecordFormat = TrainRecord["format"];

function formatOf(v: Record<string, unknown>): RecordFormat | null {
  if ("messages" in v) return "chat";
  if ("prompt" in v || "completion" in v) return "prompt_completion";
  if ("text" in v) return "text";
  return null;
}

/**
 * Parses JSONL text into records. Blank lines are skipped but keep their number; every line must have
 * the first record's format. Errors read `<file>:<line>: <what to fix>`.
 */
export function parseRecords(text: string, file = "data.jsonl"): TrainRecord[] {
  const out: TrainRecord[] = [];
  let format: RecordFormat | null = null;
  const lines = text.split("\n");
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") return;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      throw new Error(`${where}: not valid JSON (${(err as Error).message})`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${where}: must be a JSON object such as {"messages":[…]}, {"prompt":…,"completion":…} or {"text":…}`);
    const f = formatOf(v as Record<string, unknown>);
    if (!f) throw new Error(`${where}: has none of the keys 'messages', 'prompt'/'completion' or 'text'`);
    if (format && f !== format) throw new Error(`${where}: is a ${f} record but the file's first record is ${format}; use one format per file`);
    format = f;
    const schema = f === "chat" ? chatLine : f === "prompt_completion" ? promptCompletionLine : textLine;
    const r = schema.safeParse(v);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new Error(`${where}: ${issue.path.length ? issue.path.join(".") + ": " : ""}${issue.message}`);
    }
    out.push({ format: f, ...(r.data as object) } as TrainRecord);
  });
  if (out.length === 0) throw new Error(`${file}: holds no record; give at least one JSON line`);
  return out;
}

/** Reads and parses a JSONL training file. */
export async function readRecords(path: string): Promise<TrainRecord[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new Error(`${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give an existing JSONL file`);
  }
  return parseRecords(text, path);
}
