import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixturesDir } from "../helpers/fixtures.js";

const BASE = `${fixturesDir}/micro-llama/base`;

/** Runs `node bin/tuneserve.mjs …args` and returns its exit status and output. */
function tuneserve(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ["bin/tuneserve.mjs", ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, ...env } });
}

/** A user's mistake: exit 2, one line on stderr (no usage dump, no stack), nothing on stdout. */
function expectUsageError(r: ReturnType<typeof tuneserve>, pattern: RegExp) {
  expect(r.stderr.trim(), r.stderr).toMatch(pattern);
  expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
  expect(r.stdout).toBe("");
  expect(r.status).toBe(2);
}

describe("tuneserve CLI", () => {
  it("prints its commands on help, --help and -h (stdout, exit 0)", () => {
    for (const flag of ["help", "--help", "-h"]) {
      const r = tuneserve([flag]);
      expect(r.status, flag).toBe(0);
      for (const cmd of ["serve", "runner", "engine", "bench"]) expect(r.stdout).toMatch(new RegExp(`^  ${cmd} `, "m"));
    }
    const engine = tuneserve(["engine", "-h"]);
    expect(engine.status).toBe(0);
    for (const sub of ["logits", "generate", "grads", "train"]) expect(engine.stdout).toMatch(new RegExp(`^  ${sub} `, "m"));
  });

  it("names an unknown or missing command in one line and exits 2", () => {
    expectUsageError(tuneserve(["fly"]), /^tuneserve: unknown command 'fly' \(the commands: serve, runner, engine, bench\)$/);
    expectUsageError(tuneserve([]), /^tuneserve: give a command/);
    expectUsageError(tuneserve(["engine", "fly"]), /^tuneserve engine: unknown command 'fly' \(the commands: logits, generate, grads, train\)$/);
  });

  it("prints each command's usage on --help, without starting anything", () => {
    const commands = [["serve"], ["runner"], ["engine", "generate"], ["engine", "train"], ["engine", "logits"], ["engine", "grads"]];
    for (const cmd of commands) {
      const r = tuneserve([...cmd, "--help"]);
      expect(r.status, `${cmd.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`usage: tuneserve ${cmd.join(" ")} `);
    }
  });

  it("answers a misspelt flag with its name and where the flags are listed", () => {
    for (const [cmd, flag] of [[["serve"], "--data-dir"], [["engine", "train"], "--epoch"], [["runner"], "--api-ur"]] as const) {
      expectUsageError(tuneserve([...cmd, flag, "x"]), new RegExp(`^Unknown option '${flag}' \\(tuneserve ${cmd.join(" ")} --help lists the flags\\)$`));
    }
  });

  it("names bad values of engine generate's flags before loading anything", () => {
    const gen = (...extra: string[]) => tuneserve(["engine", "generate", "--model", BASE, "--tokens", "1,2,3", ...extra]);
    expectUsageError(gen("--max-tokens", "-1"), /^--max-tokens=-1 must be an integer ≥ 1$/);
    expectUsageError(gen("--max-tokens", "abc"), /^--max-tokens=abc must be an integer ≥ 1$/);
    expectUsageError(gen("--max-tokens", "3", "--temperature", "-1"), /^--temperature=-1 must be a number ≥ 0$/);
    expectUsageError(gen("--max-tokens", "3", "--top-p", "7"), /^--top-p=7 must be a number > 0 and ≤ 1$/);
    expectUsageError(gen("--max-tokens", "3", "--stop", ""), /^--stop is empty: a stop string needs at least one character$/);
    expectUsageError(gen(), /^--max-tokens is required \(tuneserve engine generate --help lists the flags\)$/);
  });

  it("takes a negative --seed and names a token outside the vocabulary", () => {
    const ok = tuneserve(["engine", "generate", "--model", BASE, "--tokens", "1,2,3", "--max-tokens", "2", "--seed", "-5", "--temperature", "1"]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).tokens).toHaveLength(2);
    expectUsageError(tuneserve(["engine", "generate", "--model", BASE, "--tokens", "1,2,300", "--max-tokens", "2"]), /^--tokens: 300 is outside the vocabulary 0\.\.255$/);
  });

  it("names a model folder that is missing or has no config.json, and an --out whose folder is missing", () => {
    const empty = mkdtempSync(join(tmpdir(), "cli-model-"));
    expectUsageError(tuneserve(["engine", "logits", "--model", join(empty, "none"), "--tokens", "1", "--out", join(empty, "l.json")]), /^--model .*none: no such folder$/);
    expectUsageError(tuneserve(["engine", "generate", "--model", empty, "--tokens", "1", "--max-tokens", "1"]), /^--model .*: the folder has no config\.json$/);
    expectUsageError(tuneserve(["engine", "logits", "--model", BASE, "--adapter", empty, "--tokens", "1", "--out", join(empty, "l.json")]), /^--adapter .*: the folder has no adapter_config\.json$/);
    expectUsageError(tuneserve(["engine", "logits", "--model", BASE, "--tokens", "1", "--out", join(empty, "no", "l.json")]), /^--out .*l\.json: the folder .*no does not exist$/);
  });

  it("names the runner's missing settings and a bad TUNESERVE_EXECUTION_PROVIDERS without starting", () => {
    expectUsageError(tuneserve(["runner"], { TUNESERVE_API_URL: "", TUNESERVE_RUNNER_TOKEN: "" }), /^runner setting apiUrl \(--api-url \/ TUNESERVE_API_URL\) is required$/);
    const env = { TUNESERVE_API_URL: "http://127.0.0.1:9", TUNESERVE_RUNNER_TOKEN: "run_0123456789abcdef", TUNESERVE_RUNNER_MODELS: "m", TUNESERVE_EXECUTION_PROVIDERS: "gpu" };
    expectUsageError(tuneserve(["runner"], env), /^TUNESERVE_EXECUTION_PROVIDERS=gpu: use "auto", "cpu" or a list such as "cuda,cpu"$/);
  });

  it("names a runner's local model folder that is not there, or has no config.json, without starting", () => {
    const empty = mkdtempSync(join(tmpdir(), "cli-runner-model-"));
    const env = { TUNESERVE_API_URL: "http://127.0.0.1:9", TUNESERVE_RUNNER_TOKEN: "run_0123456789abcdef", TUNESERVE_RUNNER_CACHE_DIR: join(empty, "cache") };
    expectUsageError(tuneserve(["runner", "--model", `m=${join(empty, "none")}`], env), /^--model \/ TUNESERVE_RUNNER_MODELS: model m: .*none: no such folder$/);
    expectUsageError(tuneserve(["runner"], { ...env, TUNESERVE_RUNNER_MODELS: `m=${empty}` }), /^--model \/ TUNESERVE_RUNNER_MODELS: model m: .*: the folder has no config\.json$/);
  });

  it("names serve's bad --port, PORT and a --data that is not a folder", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-serve-"));
    writeFileSync(join(dir, "file"), "");
    expectUsageError(tuneserve(["serve", "--port", "-1"]), /^--port -1: must be an integer 0–65535$/);
    expectUsageError(tuneserve(["serve"], { PORT: "http" }), /^PORT http: must be an integer 0–65535$/);
    const r = tuneserve(["serve", "--port", "0", "--no-runner", "--data", join(dir, "file", "data")]);
    expect(r.stderr.trim()).toMatch(/^--data .*file\/data: not a folder \(it, or a folder above it, is a file\)$/);
    expect(r.status).toBe(1);
  });

  it("refused a taken port, serve leaves its data folder as it found it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-serve-port-"));
    const taken = createServer();
    await new Promise<void>((ok) => taken.listen(0, "127.0.0.1", ok));
    const port = (taken.address() as AddressInfo).port;
    try {
      const start = (data: string) => tuneserve(["serve", "--port", String(port), "--no-runner", "--data", data]);
      // A new folder (and the folder above it) is not made.
      const fresh = join(dir, "new", "data");
      const r = start(fresh);
      expect(r.stderr.trim()).toBe(`127.0.0.1:${port} is already in use; stop what listens there or pick another port (--port N, or PORT)`);
      expect(r.status).toBe(1);
      expect(existsSync(join(dir, "new"))).toBe(false);
      // An empty folder stays empty; one in use keeps what it holds.
      mkdirSync(join(dir, "empty"));
      expect(start(join(dir, "empty")).status).toBe(1);
      expect(readdirSync(join(dir, "empty"))).toEqual([]);
      mkdirSync(join(dir, "used"));
      writeFileSync(join(dir, "used", "notes.txt"), "mine");
      expect(start(join(dir, "used")).status).toBe(1);
      expect(readdirSync(join(dir, "used"))).toEqual(["notes.txt"]);
    } finally {
      await new Promise((ok) => taken.close(ok));
    }
  });
});
