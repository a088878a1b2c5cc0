// The data folder of `tuneserve serve`: made and proved writable before anything starts, so a bad --data is named at once.
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Creates `dir` if needed and writes a probe file in it; the error names --data and what went wrong. */
export async function prepareDataFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EEXIST" || e.code === "ENOTDIR") throw new Error(`--data ${dir}: not a folder (it, or a folder above it, is a file)`);
    throw new Error(`--data ${dir}: cannot create the data folder (${e.code ?? e.message})`);
  }
  // Root passes permission checks, and a read-only mount fails only on write: try one.
  const probe = join(dir, `.write-test-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await writeFile(probe, "");
  } catch (err) {
    throw new Error(`--data ${dir}: the data folder is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); serve keeps its database, blobs and secrets there`);
  }
  await rm(probe, { force: true });
}
