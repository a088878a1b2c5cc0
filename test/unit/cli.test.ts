import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("tuneserve CLI", () => {
  it("prints usage listing its commands", () => {
    const out = execFileSync(process.execPath, ["bin/tuneserve.mjs", "help"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(out).toBe("");
  });
});
