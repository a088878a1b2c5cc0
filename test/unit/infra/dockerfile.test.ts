// infra/Dockerfile.runner against the code: the Node it builds on, the folders and packages the runner reaches, the
// onnxruntime-node CUDA install flag and file, and the runner settings and port it sets. (Docker itself is not run here.)
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CUDA_PROVIDER_LIB } from "../../../gpu-runner/src/engine/runtime/providers.js";
import { loadRunnerConfig, runnerEnvNames } from "../../../gpu-runner/src/runner/config.js";
import { dockerStages, reachedFrom, ROOT } from "./read-infra.js";

const DOCKERFILE = "infra/Dockerfile.runner";
const [build, runtime] = dockerStages(DOCKERFILE);
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
/** Stand-ins for the settings an operator passes at `docker run` (the image cannot know them). */
const operatorValues: Record<string, string> = { TUNESERVE_API_URL: "http://api:8787", TUNESERVE_RUNNER_TOKEN: "run_0123456789abcdef", TUNESERVE_RUNNER_MODELS: "llama-3.2-1b" };

describe(DOCKERFILE, () => {
  it("builds on a Node release that package.json's engines accept, and runs that node", () => {
    const major = Number(/^node:(\d+)/.exec(build.from)?.[1]);
    const wanted = Number(/^>=\s*(\d+)/.exec(pkg.engines.node)?.[1]);
    expect(major).toBeGreaterThanOrEqual(wanted);
    expect(runtime.copies).toContainEqual({ from: build.name, sources: ["/usr/local/bin/node"], dest: "/usr/local/bin/node" });
  });

  it("copies every folder the runner and serve reach, and they import only dependencies (npm ci --omit=dev)", () => {
    const copied = build.copies.filter((c) => !c.from).flatMap((c) => c.sources);
    for (const source of copied) expect(existsSync(join(ROOT, source)), source).toBe(true);
    expect(build.runs.join("\n")).toMatch(/npm ci --omit=dev/);
    // `bench` needs the PyTorch peer and is not part of the image.
    const { files, packages } = reachedFrom([runtime.entrypoint![1]], ["bench/"]);
    for (const top of new Set([...files].map((f) => f.split("/")[0]))) expect(copied, `${top}/ is imported but not copied`).toContain(top);
    for (const p of packages) expect(Object.keys(pkg.dependencies), `${p} is imported but only a devDependency`).toContain(p);
  });

  it("starts the runner through the package's bin", () => {
    expect(runtime.entrypoint).toEqual(["node", pkg.bin.tuneserve, "runner"]);
  });

  it("installs onnxruntime-node's CUDA provider with a flag its install script knows, and checks the file the engine looks for", () => {
    const meta = createRequire(import.meta.url)(join(ROOT, "node_modules/onnxruntime-node/script/install-metadata.js"));
    const flag = build.env.ONNXRUNTIME_NODE_INSTALL;
    expect(meta.requirements["linux/x64"]).toContain(flag);
    const run = build.runs.join("\n");
    expect(run).toContain(`--onnxruntime-node-install=${flag}`);
    expect(run).toContain(`test -f node_modules/onnxruntime-node/${CUDA_PROVIDER_LIB}`);
    expect(runtime.env.TUNESERVE_EXECUTION_PROVIDERS).toBe("auto");
  });

  it("sets only runner variables, to values the runner takes, and exposes the port it listens on", () => {
    const names = Object.keys(runtime.env).filter((n) => n.startsWith("TUNESERVE_"));
    for (const name of names) expect(runnerEnvNames, name).toContain(name);
    const config = loadRunnerConfig([], { ...runtime.env, ...operatorValues }, "pod");
    expect(runtime.expose).toEqual([config.listen.split(":")[1]]);
    expect(runtime.runs.join("\n")).toContain(`mkdir -p ${config.cacheDir}`);
  });

  it("documents a docker run that sets every variable the runner requires", () => {
    const line = readFileSync(join(ROOT, DOCKERFILE), "utf8").split("\n").find((l) => l.includes("docker run"))!;
    const given = [...line.matchAll(/-e (TUNESERVE_[A-Z_]+)=/g)].map((m) => m[1]);
    const env = Object.fromEntries(given.map((n) => [n, operatorValues[n] ?? "http://gpu-host:8788"]));
    expect(() => loadRunnerConfig([], { ...runtime.env, ...env }, "pod")).not.toThrow();
    // The image listens on 0.0.0.0, which the API cannot call back: the runner must announce where it is reachable.
    expect(runtime.env.TUNESERVE_RUNNER_LISTEN).toMatch(/^0\.0\.0\.0:/);
    expect(given).toContain("TUNESERVE_RUNNER_PUBLIC_URL");
    expect(line).toContain(`-p ${runtime.expose[0]}:${runtime.expose[0]}`);
  });
});
