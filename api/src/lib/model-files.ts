// A base model's files (a blob prefix or a local Hugging Face folder) and the summary the API keeps of them:
// config.json's sizes and limits (model-shapes.ts) and whether it has a tokenizer and chat template (model-text.ts).
import { eq } from "drizzle-orm";
import { blobPrefixOf, readAllUpTo } from "../blob/port.js";
import { baseModels } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../errors.js";
import { summarizeConfig, type ModelSummary } from "./model-shapes.js";
import { readModelText, type ModelFiles } from "./model-text.js";

/**
 * The most of each small file read whole from a blob prefix. Real ones are far under: a config.json is a few KB
 * (one with a classifier's id2label of 20k labels under 1 MB); a tokenizer_config.json lists its added tokens,
 * ~150 bytes each, so Gemma 3's 6k+ (about 1.2 MB) or 100k of them (15 MB) still fit.
 */
export const maxModelFileBytes = { "config.json": 4 * 1024 * 1024, "tokenizer_config.json": 16 * 1024 * 1024 } as const;

type SmallModelFile = keyof typeof maxModelFileBytes;
const isSmallModelFile = (name: string): name is SmallModelFile => Object.hasOwn(maxModelFileBytes, name);

/** The files of a model source, by name. */
function modelFiles(deps: Deps, source: string): ModelFiles {
  const prefix = blobPrefixOf(source);
  if (prefix !== null) {
    return {
      read: async (name) => {
        if (!isSmallModelFile(name)) throw new Error(`${name} is not a file the API reads whole`);
        const obj = await deps.blobs.get(prefix + name);
        if (!obj) return null;
        const max = maxModelFileBytes[name];
        const tooLarge = (bytes: number) => new ApiError("invalid_request", `${name} at ${source} is ${bytes} bytes, over the ${max}-byte bound for it (a real one is far smaller); check that the prefix holds the model's files`, "source");
        return readAllUpTo(obj, max, tooLarge);
      },
      exists: async (name) => (await deps.blobs.head(prefix + name)) !== null,
    };
  }
  if (!source.startsWith("/")) throw new ApiError("invalid_request", "source must be 'blob:<prefix>/' or an absolute folder path", "source");
  const local = deps.localFiles;
  if (!local) throw new ApiError("invalid_request", "local folders are not available on this deployment; upload the model to the blob store and use 'blob:<prefix>/'", "source");
  const path = (name: string) => `${source.replace(/\/$/, "")}/${name}`;
  return { read: (name) => local.read(path(name)), exists: (name) => local.exists(path(name)) };
}

/** Reads a model's summary from its files; a model no runner could load is a 400 naming the field. */
export async function describeModel(deps: Deps, source: string): Promise<ModelSummary> {
  const files = modelFiles(deps, source);
  const bytes = await files.read("config.json");
  if (!bytes) throw new ApiError("invalid_request", `no config.json found at ${source}`, "source");
  let summary: ModelSummary;
  try {
    summary = summarizeConfig(JSON.parse(new TextDecoder().decode(bytes)));
  } catch (e) {
    throw new ApiError("invalid_request", e instanceof Error ? e.message : String(e), "source");
  }
  return { ...summary, ...(await readModelText(files)) };
}

/**
 * The summary of a model registered before it noted a tokenizer and chat template (and the engine's 4096 for a
 * config.json without max_position_embeddings): read again from its files once and stored, so that the checks
 * made at registration today cover it too. Best effort: files that cannot be read now leave the summary as it was.
 */
export async function currentSummary(deps: Deps, base: { id: string; source: string }, summary: ModelSummary): Promise<ModelSummary> {
  if (summary.has_tokenizer !== undefined) return summary;
  try {
    const fresh = await describeModel(deps, base.source);
    await deps.db.update(baseModels).set({ config: JSON.stringify(fresh) }).where(eq(baseModels.id, base.id));
    return fresh;
  } catch (e) {
    console.warn(`base model ${base.id}: could not read its files again to note its tokenizer and chat template (${e instanceof Error ? e.message : String(e)})`);
    return summary;
  }
}
