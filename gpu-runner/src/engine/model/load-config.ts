// Reads a model folder's config.json and validates it (model/config.ts).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseModelConfig, type ModelConfig } from "./config.js";

/** Reads and validates `<dir>/config.json`. */
export async function loadModelConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new Error(`${path}: not found; a model folder needs a Hugging Face config.json`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return parseModelConfig(json);
}
