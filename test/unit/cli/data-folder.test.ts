// serve's --data check: a folder that cannot be made is named at once, wherever it is.
import { existsSync } from "node:fs";
import { mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareDataFolder } from "../../../cli/data-folder.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-data-folder-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("prepareDataFolder", () => {
  it("makes the missing folders of a nested path, and takes an existing folder or a link to one", async () => {
    await prepareDataFolder(join(dir, "a", "b", "c"));
    expect((await stat(join(dir, "a", "b", "c"))).isDirectory()).toBe(true);
    await prepareDataFolder(join(dir, "a"));
    await symlink(join(dir, "a"), join(dir, "link"));
    await prepareDataFolder(join(dir, "link"));
  });

  it("names a file on the path as not a folder", async () => {
    await writeFile(join(dir, "file"), "");
    await expect(prepareDataFolder(join(dir, "file"))).rejects.toThrow(/: not a folder \(it, or a folder above it, is a file\)$/);
    await expect(prepareDataFolder(join(dir, "file", "x"))).rejects.toThrow(/: not a folder/);
  });

  it("names a link on the path whose target is missing", async () => {
    await symlink(join(dir, "unmounted", "disk"), join(dir, "broken"));
    const said = /: .*broken is a link to .*unmounted\/disk, which is not there \(a disk not mounted\?\)$/;
    await expect(prepareDataFolder(join(dir, "broken"))).rejects.toThrow(said);
    await expect(prepareDataFolder(join(dir, "broken", "data"))).rejects.toThrow(said);
  });

  // Node's own recursive mkdir never settles there (the parent exists, yet mkdir answers ENOENT), so serve
  // hung silently on such a --data.
  it.skipIf(!existsSync("/proc/self"))("refuses a folder under /proc at once instead of hanging", async () => {
    await expect(prepareDataFolder("/proc/tuneserve-no-such/data")).rejects.toThrow(/^--data \/proc\/tuneserve-no-such\/data: cannot create the data folder \(ENOENT\)$/);
  }, 5_000);
});
