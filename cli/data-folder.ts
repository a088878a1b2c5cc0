// The data folder of `tuneserve serve`: made and proved writable before the API opens it (once the port is held), so a
// bad --data is named at once.
import { randomBytes } from "node:crypto";
import { mkdir, readlink, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";

/** Creates `dir` if needed and writes a probe file in it; the error names --data and what went wrong. */
export async function prepareDataFolder(dir: string): Promise<void> {
  try {
    await makeFolder(resolve(dir));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof BrokenLink) throw new Error(`--data ${dir}: ${err.message}`);
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

/** A link on the path whose target is missing: neither "a file" nor a folder that mkdir could make. */
class BrokenLink extends Error {}

/**
 * `mkdir -p`, one level at a time. Node's `mkdir(…, { recursive: true })` never settles where a parent exists
 * but mkdir answers ENOENT (under /proc or /sys), so serve hung there with nothing said.
 */
async function makeFolder(dir: string, parentMade = false): Promise<void> {
  try {
    await mkdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      const found = await stat(dir).catch(() => null);
      if (found?.isDirectory()) return;
      if (!found) throw new BrokenLink(`${dir} is a link to ${await readlink(dir).catch(() => "?")}, which is not there (a disk not mounted?)`);
    }
    if (code !== "ENOENT" || parentMade || dirname(dir) === dir) throw err;
    await makeFolder(dirname(dir));
    await makeFolder(dir, true);
  }
}
