// A base model's files (a blob prefix or a local Hugging Face folder) and the summary the API keeps of them:
// config.json's sizes and limits (model-shapes.ts) and whether it has a tokenizer and chat template (model-text.ts).
import { eq } from "drizzle-orm";
import { blobPrefixOf, readAll } from "../blob/port.js";
import { baseModels } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { ApiError } from "../errors.js";
import { summarizeConfig, type ModelSummary } from "./model-shapes.js";
import { readModelText, type ModelFiles } from "./model-text.js";

/** The files of a model source, by name. */
function modelFiles(deps: Deps, source: string): ModelFiles {
  const prefix = blobPrefixOf(source);
  if (prefix !== null) {
    return {
      read: async (name) => {
        const obj = await deps.blobs.get(prefix + name);
        return obj ? readAll(obj) : null;
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
