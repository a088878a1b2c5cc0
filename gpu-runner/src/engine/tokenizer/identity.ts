// What a model folder tokenizes data with, as a training checkpoint records it: a resumed run must turn the same
// data file into the same rows, which another tokenizer or chat template can do while keeping their count.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** The files of a model folder that decide how data is tokenized (loadTokenizer reads them). */
export const TOKENIZATION_FILES = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] as const;

/** The end-of-sequence ids' entry: generation_config.json and config.json add to them, and rows end with them. */
const EOS_ENTRY = "eos_token_ids";

/**
 * The identity of `modelDir`'s tokenization, as one string for a checkpoint's fingerprint: the sha256 of each of
 * TOKENIZATION_FILES (null when absent) and the tokenizer's end-of-sequence ids. Hashing the files' bytes
 * (read once a run) is cheap next to training; an edit that tokenizes the same (reformatted JSON) still counts.
 */
export async function tokenizationIdentity(modelDir: string, eosTokenIds: readonly number[]): Promise<string> {
  const entries: Record<string, string | null> = {};
  for (const name of TOKENIZATION_FILES) {
    const bytes = await readFile(join(modelDir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null;
      throw err;
    });
    entries[name] = bytes === null ? null : createHash("sha256").update(bytes).digest("hex");
  }
  entries[EOS_ENTRY] = eosTokenIds.join(",");
  return JSON.stringify(entries);
}

/** What differs between two identities, in words ("tokenizer_config.json", …); empty when they are the same. */
export function tokenizationChanges(saved: string, current: string): string[] {
  if (saved === current) return [];
  const parse = (s: string): Record<string, unknown> | null => {
    try {
      const v: unknown = JSON.parse(s);
      return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  };
  const a = parse(saved);
  const b = parse(current);
  if (!a || !b) return ["tokenizer files"];
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]);
  return keys.map((k) => (k === EOS_ENTRY ? "end-of-sequence token ids (tokenizer_config.json, generation_config.json, config.json)" : k));
}
