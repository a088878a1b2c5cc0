// Runner settings: env and flags, flags winning, model specs, and errors that name the setting.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../../gpu-runner/src/cli/args.js";
import { loadRunnerConfig, parseModelSpec, RUNNER_USAGE } from "../../../gpu-runner/src/runner/config.js";

const env = { TUNESERVE_API_URL: "http://127.0.0.1:8787/", TUNESERVE_RUNNER_TOKEN: "run_0123456789abcdef", TUNESERVE_RUNNER_MODELS: "micro=/models/micro, qwen" };

describe("parseModelSpec", () => {
  it("reads id=/folder as a local model and a bare id as a blob model", () => {
    expect(parseModelSpec("micro=/models/micro")).toEqual({ id: "micro", dir: "/models/micro" });
    expect(parseModelSpec("qwen2-0.5b")).toEqual({ id: "qwen2-0.5b", dir: null });
  });
  it("refuses ids the API would refuse and empty folders", () => {
    expect(() => parseModelSpec("Bad Id")).toThrow(/lowercase/);
    expect(() => parseModelSpec("micro=")).toThrow(/folder after '=' is empty/);
  });
});

describe("loadRunnerConfig", () => {
  it("takes env, applies defaults and trims the API URL", () => {
    const c = loadRunnerConfig([], env, "box1");
    expect(c.apiUrl).toBe("http://127.0.0.1:8787");
    expect(c.models).toEqual([{ id: "micro", dir: "/models/micro" }, { id: "qwen", dir: null }]);
    expect(c.name).toBe("runner-box1");
    expect(c.trainingJobs).toBe(1);
    expect(c.checkpointEvery).toBe(50);
    expect(c.shutdownCheckpointSeconds).toBe(20);
    expect(c.maxContext).toBe(2048);
  });
  it("lets flags override env, --model repeating", () => {
    const c = loadRunnerConfig(["--model", "a=/x", "--model", "b", "--capacity", "8", "--checkpoint-every", "0", "--name", "gpu-1", "--max-context", "8192", "--shutdown-checkpoint-seconds", "0"], env);
    expect(c.models.map((m) => m.id)).toEqual(["a", "b"]);
    expect(c.capacity).toBe(8);
    expect(c.checkpointEvery).toBe(0);
    expect(c.name).toBe("gpu-1");
    expect(c.maxContext).toBe(8192);
    expect(c.shutdownCheckpointSeconds).toBe(0);
  });
  it("takes negative values after a flag as values, to name them as out of range", () => {
    expect(() => loadRunnerConfig(["--capacity", "-2"], env)).toThrow(/^runner setting capacity \(--capacity \/ TUNESERVE_RUNNER_CAPACITY\) is "-2"/);
  });
  it("refuses a bad TUNESERVE_EXECUTION_PROVIDERS before the runner starts, and takes an empty one as unset", () => {
    expect(() => loadRunnerConfig([], { ...env, TUNESERVE_EXECUTION_PROVIDERS: "gpu" })).toThrow(UsageError);
    expect(() => loadRunnerConfig([], { ...env, TUNESERVE_EXECUTION_PROVIDERS: "gpu" })).toThrow(/TUNESERVE_EXECUTION_PROVIDERS=gpu: use "auto", "cpu"/);
    expect(loadRunnerConfig([], { ...env, TUNESERVE_EXECUTION_PROVIDERS: "" }).models).toHaveLength(2);
    expect(loadRunnerConfig([], { ...env, TUNESERVE_EXECUTION_PROVIDERS: "cuda,cpu" }).models).toHaveLength(2);
  });
  it("lists every flag with its variable and default in --help", () => {
    expect(RUNNER_USAGE).toMatch(/--capacity +TUNESERVE_RUNNER_CAPACITY +default 16/);
    expect(RUNNER_USAGE).toMatch(/--api-url +TUNESERVE_API_URL +required/);
    expect(RUNNER_USAGE).toContain("TUNESERVE_EXECUTION_PROVIDERS");
  });
  it("names the setting, its flag and its variable in errors", () => {
    expect(() => loadRunnerConfig([], { ...env, TUNESERVE_API_URL: undefined })).toThrow(/^runner setting apiUrl \(--api-url \/ TUNESERVE_API_URL\) is required$/);
    expect(() => loadRunnerConfig(["--capacity", "0"], env)).toThrow(/capacity \(--capacity \/ TUNESERVE_RUNNER_CAPACITY\) is "0"/);
    expect(() => loadRunnerConfig([], { ...env, TUNESERVE_RUNNER_MODELS: "" })).toThrow(/at least one base model/);
    expect(() => loadRunnerConfig(["--listen", "8080"], env)).toThrow(/host:port/);
    expect(() => loadRunnerConfig(["--bogus"], env)).toThrow(/bogus/);
    expect(() => loadRunnerConfig([], { ...env, TUNESERVE_RUNNER_SHUTDOWN_CHECKPOINT_SECONDS: "-1" })).toThrow(/shutdownCheckpointSeconds \(--shutdown-checkpoint-seconds \/ TUNESERVE_RUNNER_SHUTDOWN_CHECKPOINT_SECONDS\) is "-1"/);
    expect(() => loadRunnerConfig([], { ...env, TUNESERVE_RUNNER_MAX_CONTEXT: "8" })).toThrow(/maxContext \(--max-context \/ TUNESERVE_RUNNER_MAX_CONTEXT\) is "8"/);
  });
});

describe("docs/runner.md's settings table", () => {
  it("has a row for every setting --help lists, with its flag and plain default", () => {
    const table = readFileSync(new URL("../../../docs/runner.md", import.meta.url), "utf8").split("\n").filter((l) => l.startsWith("| `TUNESERVE_"));
    const settings = [...RUNNER_USAGE.matchAll(/^ {2}--(\S+) +(TUNESERVE_\S+) +(.*)$/gm)];
    expect(settings.length).toBeGreaterThan(10);
    for (const [, flag, env, fallback] of settings) {
      const row = table.find((l) => l.startsWith(`| \`${env}\` |`));
      expect(row, env).toBeDefined();
      const [, flagCell, defaultCell] = row!.split(" | ");
      expect(flagCell, env).toMatch(new RegExp(`^\`--${flag}\``));
      // Numbers and words as --help prints them (paths and URLs are written for the reader there).
      const plain = /^default ([\w.:-]+)$/.exec(fallback)?.[1];
      if (plain && !plain.includes("runner-")) expect(defaultCell.replace(/`/g, ""), env).toBe(plain);
    }
    expect(table).toHaveLength(settings.length);
  });
});
