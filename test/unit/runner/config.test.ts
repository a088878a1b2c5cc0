// Runner settings: env and flags, flags winning, model specs, and errors that name the setting.
import { describe, expect, it } from "vitest";
import { loadRunnerConfig, parseModelSpec } from "../../../gpu-runner/src/runner/config.js";

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
  it("names the setting, its flag and its variable in errors", () => {
    expect(() => loadRunnerConfig([], { ...env, TUNESERVE_API_URL: undefined })).toThrow(/apiUrl \(--api-url \/ TUNESERVE_API_URL\) is missing/);
    expect(() => loadRunnerConfig(["--capacity", "0"], env)).toThrow(/capacity \(--capacity \/ TUNESERVE_RUNNER_CAPACITY\) is "0"/);
    expect(() => loadRunnerConfig([], { ...env, TUNESERVE_RUNNER_MODELS: "" })).toThrow(/at least one base model/);
    expect(() => loadRunnerConfig(["--listen", "8080"], env)).toThrow(/host:port/);
    expect(() => loadRunnerConfig(["--bogus"], env)).toThrow(/bogus/);
    expect(() => loadRunnerConfig([], { ...env, TUNESERVE_RUNNER_SHUTDOWN_CHECKPOINT_SECONDS: "-1" })).toThrow(/shutdownCheckpointSeconds \(--shutdown-checkpoint-seconds \/ TUNESERVE_RUNNER_SHUTDOWN_CHECKPOINT_SECONDS\) is "-1"/);
    expect(() => loadRunnerConfig([], { ...env, TUNESERVE_RUNNER_MAX_CONTEXT: "8" })).toThrow(/maxContext \(--max-context \/ TUNESERVE_RUNNER_MAX_CONTEXT\) is "8"/);
  });
});
