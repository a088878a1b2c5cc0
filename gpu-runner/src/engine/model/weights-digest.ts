// The identity of a model folder's weights: what a training checkpoint records, so that a resume on weights
// replaced since (the same file names, other values) is refused rather than training one adapter on two models.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";

/** Digests this thread computed, by folder, with the files' stats they were computed from. */
const known = new Map<string, { stats: string; sha256: string }>();

/** The weight files openWeights reads: every *.safetensors of the folder, sorted. */
async function weightFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith(".safetensors")).sort();
}

/**
 * The sha256 of `dir`'s *.safetensors files (each one's name, length and bytes, in name order). Reading a large
 * model takes a while (about a second per GB), so it is remembered while the files' sizes, inodes and modification
 * times stay the same: a runner digests each copy once. `signal` ends the reading (a cancelled attempt, a runner
 * shutting down within its grace period) with its reason.
 */
export async function weightsDigest(dir: string, signal?: AbortSignal): Promise<string> {
  const folder = resolve(dir);
  const names = await weightFiles(folder);
  const files = await Promise.all(names.map(async (n) => ({ n, s: await stat(join(folder, n), { bigint: true }) })));
  const stats = JSON.stringify(files.map(({ n, s }) => [n, String(s.size), String(s.ino), String(s.mtimeNs)]));
  const hit = known.get(folder);
  if (hit?.stats === stats) return hit.sha256;
  const hash = createHash("sha256");
  for (const { n, s } of files) {
    hash.update(`${n}\n${s.size}\n`);
    signal?.throwIfAborted();
    for await (const chunk of createReadStream(join(folder, n))) {
      signal?.throwIfAborted();
      hash.update(chunk as Buffer);
    }
    hash.update("\n");
  }
  const sha256 = hash.digest("hex");
  known.set(folder, { stats, sha256 });
  return sha256;
}
