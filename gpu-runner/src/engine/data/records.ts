// Training records from a JSONL file: chat ({"messages":[…]}), prompt/completion, raw text, or preference
// pairs for DPO ({"input":{"messages":[…]},"preferred_output":[…],"non_preferred_output":[…]}). The API
// validated uploads already; the CLI reads user files directly, so every line is checked again here.
import { readFile } from "node:fs/promises";
import type { z } from "zod";
// The line shapes are the API's own (one source of truth for what an upload may hold).
import { chatLine, detectFormat, lineSchemas, NO_FORMAT, preferenceLine, RECORD_EXAMPLES } from "../../../../api/src/files/line-shapes.js";
import { issueLine } from "../../../../api/src/lib/zod-issue.js";

type Messages = z.infer<typeof chatLine>["messages"];
type Tools = z.infer<typeof chatLine>["tools"];

export type TrainRecord =
  | { format: "chat"; messages: Messages; tools?: Tools }
  | { format: "prompt_completion"; prompt: string; completion: string }
  | { format: "text"; text: string }
  /** A DPO pair: the conversation so far, and the assistant turn to prefer over the other. */
  | { format: "preference"; messages: Messages; tools?: Tools; chosen: Messages[number]; rejected: Messages[number] };
export type RecordFormat = TrainRecord["format"];

function toRecord(format: RecordFormat, v: unknown): TrainRecord {
  if (format !== "preference") return { format, ...(v as object) } as TrainRecord;
  const line = v as z.infer<typeof preferenceLine>;
  return { format, messages: line.input.messages, tools: line.input.tools, chosen: line.preferred_output[0], rejected: line.non_preferred_output[0] };
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
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${where}: must be a JSON object such as ${RECORD_EXAMPLES}`);
    const f = detectFormat(v as Record<string, unknown>);
    if (!f) throw new Error(`${where}: ${NO_FORMAT}`);
    if (format && f !== format) throw new Error(`${where}: is a ${f} record but the file's first record is ${format}; use one format per file`);
    format = f;
    const r = lineSchemas[f].safeParse(v);
    if (!r.success) {
      throw new Error(`${where}: ${issueLine(r.error.issues[0], "record")}`);
    }
    out.push(toRecord(f, r.data));
  });
  if (out.length === 0) throw new Error(`${file}: holds no record; give at least one JSON line`);
  return out;
}

/** Reads and parses a JSONL training file; `name` names it in the parse errors (the caller's name for it: the path, or an API file id). */
export async function readRecords(path: string, name = path): Promise<TrainRecord[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new Error(`${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give an existing JSONL file`);
  }
  return parseRecords(text, name);
}
