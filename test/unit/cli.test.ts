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

  it("prints each command's usage on --help, without starting anything", () => {
    const commands = [["serve"], ["engine", "generate"], ["engine", "train"], ["engine", "logits"], ["engine", "grads"]];
    for (const cmd of commands) {
      const r = spawnSync(process.execPath, ["bin/tuneserve.mjs", ...cmd, "--help"], { encoding: "utf8", timeout: 30_000 });
      expect(r.status, `${cmd.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`usage: tuneserve ${cmd.join(" ")} `);
    }
  });

  it("answers a misspelt flag with its name and the command's usage", () => {
    for (const [cmd, flag] of [[["serve"], "--data-dir"], [["engine", "train"], "--epoch"]] as const) {
      const r = spawnSync(process.execPath, ["bin/tuneserve.mjs", ...cmd, flag, "x"], { encoding: "utf8", timeout: 30_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`Unknown option '${flag}'`);
      expect(r.stderr).toContain(`usage: tuneserve ${cmd.join(" ")} `);
    }
  });
});
