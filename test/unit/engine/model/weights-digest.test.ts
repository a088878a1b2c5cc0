// weightsDigest, the base weights' identity in a training checkpoint: the sha256 of a folder's *.safetensors
// files (names, lengths, bytes), remembered while their stats stay the same, and given up when its caller is
// (a cancelled or shut-down attempt must not read a large model on to its end).
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { weightsDigest } from "../../../../gpu-runner/src/engine/model/weights-digest.js";

let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), "tuneserve-digest-"))));
afterAll(() => rm(dir, { recursive: true, force: true }));

const expected = (files: [string, string][]) => {
  const h = createHash("sha256");
  for (const [n, body] of files) h.update(`${n}\n${Buffer.byteLength(body)}\n${body}\n`);
  return h.digest("hex");
};

describe("weightsDigest", () => {
  it("digests the *.safetensors files in name order, and again once one is rewritten", async () => {
    const model = join(dir, "model");
    await mkdir(model);
    await writeFile(join(model, "b.safetensors"), "second");
    await writeFile(join(model, "a.safetensors"), "first");
    await writeFile(join(model, "config.json"), "{}");
    expect(await weightsDigest(model)).toBe(expected([["a.safetensors", "first"], ["b.safetensors", "second"]]));
    await writeFile(join(model, "b.safetensors"), "other!");
    expect(await weightsDigest(model)).toBe(expected([["a.safetensors", "first"], ["b.safetensors", "other!"]]));
  });

  it("gives up when its signal aborts, remembering nothing", async () => {
    const model = join(dir, "aborted");
    await mkdir(model);
    await writeFile(join(model, "model.safetensors"), Buffer.alloc(4 * 1024 * 1024, 1));
    const abort = new AbortController();
    abort.abort(new Error("the job was cancelled"));
    await expect(weightsDigest(model, abort.signal)).rejects.toThrow("the job was cancelled");
    // Not cached as done: a later call digests the folder.
    expect(await weightsDigest(model)).toMatch(/^[0-9a-f]{64}$/);
  });
});
