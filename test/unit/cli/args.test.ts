// CLI flag helpers: negative numbers taken as values, bounds named, one-line UsageErrors pointing at --help, folders checked.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { existingFolder, helpHint, joinNegativeValues, numberFlag, outputFile, parseFlags, required, UsageError } from "../../../gpu-runner/src/cli/args.js";

const USAGE = "usage: tuneserve engine generate --model DIR --max-tokens N\nmore lines";

describe("CLI flag helpers", () => {
  it("names the command's --help from its usage", () => {
    expect(helpHint(USAGE)).toBe("(tuneserve engine generate --help lists the flags)");
    expect(helpHint("usage: tuneserve serve [--port 8787]")).toBe("(tuneserve serve --help lists the flags)");
  });

  it("takes a negative number after a string flag as its value, and leaves flags and booleans alone", () => {
    const options = { seed: { type: "string" as const }, chat: { type: "boolean" as const } };
    expect(joinNegativeValues(["--seed", "-5", "--chat", "-1"], options)).toEqual(["--seed=-5", "--chat", "-1"]);
    expect(joinNegativeValues(["--seed", "--chat"], options)).toEqual(["--seed", "--chat"]);
    expect(parseFlags({ args: ["--seed", "-0.5"], options }, USAGE).values.seed).toBe("-0.5");
  });

  it("turns parseArgs' errors into one-line UsageErrors naming the flag", () => {
    const options = { model: { type: "string" as const } };
    const call = (args: string[]) => () => parseFlags({ args, options }, USAGE);
    expect(call(["--modle", "x"])).toThrow(UsageError);
    expect(call(["--modle", "x"])).toThrow(/^Unknown option '--modle' \(tuneserve engine generate --help lists the flags\)$/);
    expect(call(["--model"])).toThrow(/^Option '--model <value>' argument missing \(tuneserve/);
    expect(call(["--model", "--other"])).toThrow(/^Option '--model' argument is ambiguous\.[^\n]*$/);
    expect(call(["x"])).toThrow(/^Unexpected argument 'x'[^\n]*$/);
  });

  it("says a required flag is missing or empty in one line", () => {
    expect(() => required(undefined, "--out", USAGE)).toThrow(/^--out is required \(tuneserve engine generate --help lists the flags\)$/);
    expect(() => required("", "--tokens", USAGE)).toThrow(/^--tokens is empty /);
  });

  it("checks numbers against their bounds and names them", () => {
    expect(numberFlag("0.5", "--top-p", 1, { above: 0, max: 1 })).toBe(0.5);
    expect(() => numberFlag("7", "--top-p", 1, { above: 0, max: 1 })).toThrow(/^--top-p=7 must be a number > 0 and ≤ 1$/);
    expect(() => numberFlag("0", "--top-p", 1, { above: 0, max: 1 })).toThrow(/--top-p=0/);
    expect(() => numberFlag("", "--seed", 0, { integer: true })).toThrow(/--seed= must be an integer/);
    expect(() => numberFlag("1e30", "--seed", 0, { integer: true })).toThrow(/--seed=1e30 must be an integer/);
    expect(() => numberFlag("abc", "--max-tokens", 0, { integer: true, min: 1 })).toThrow(UsageError);
  });

  it("names a folder flag that points nowhere, at a file, or at a folder without the file it needs", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-args-"));
    writeFileSync(join(dir, "file"), "");
    expect(() => existingFolder(join(dir, "none"), "--model")).toThrow(/^--model .*none: no such folder$/);
    expect(() => existingFolder(join(dir, "file"), "--model")).toThrow(/: not a folder$/);
    expect(() => existingFolder(dir, "--model", "config.json")).toThrow(/^--model .*: the folder has no config\.json$/);
    writeFileSync(join(dir, "config.json"), "{}");
    expect(existingFolder(dir, "--model", "config.json")).toBe(dir);
  });

  it("names an output file whose folder does not exist, or that is a folder", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-args-"));
    expect(outputFile(join(dir, "out.json"), "--out")).toBe(join(dir, "out.json"));
    expect(() => outputFile(join(dir, "no", "out.json"), "--out")).toThrow(/^--out .*: the folder .*no does not exist$/);
    expect(() => outputFile(dir, "--out")).toThrow(/is a folder; give a file name/);
  });
});
