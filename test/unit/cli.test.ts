import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("tuneserve CLI", () => {
  it("prints usage listing its commands", () => {
    const r = spawnSync(process.execPath, ["bin/tuneserve.mjs", "help"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    for (const cmd of ["serve", "runner", "engine", "bench"]) expect(r.stderr).toMatch(new RegExp(`^  ${cmd} `, "m"));
  });

  it("exits 2 on an unknown command", () => {
    const r = spawnSync(process.execPath, ["bin/tuneserve.mjs", "fly"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("usage: tuneserve <command>");
  });
});
