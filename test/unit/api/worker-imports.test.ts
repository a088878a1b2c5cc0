// The Worker bundle's import graph: what api/src/worker.ts reaches must load inside workerd, so no
// onnxruntime, no Node file system, and from gpu-runner/ only the pure modules the API shares.
import { existsSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../../..");
/** gpu-runner modules the API may import: pure (zod only), no engine runtime. */
const sharedWithRunner = new Set(["gpu-runner/src/engine/model/config.ts"]);
const nodeOnly = /^(node:)?(fs|fs\/promises|worker_threads|child_process|os|net|http|https)$|^onnxruntime|^libsql|^@libsql|^@hono\/node-server/;

/** Static and dynamic import specifiers of one source file (comments stripped). */
function specifiers(file: string): string[] {
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|[^.\w])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm)) {
    found.push(m[1] ?? m[2] ?? m[3]);
  }
  return found;
}

function resolveLocal(from: string, spec: string): string {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, ".ts"), base, `${base}.ts`, resolve(base, "index.ts")]) {
    if (existsSync(candidate) && candidate.match(/\.[cm]?[jt]s$/)) return candidate;
  }
  throw new Error(`${relative(root, from)}: cannot resolve ${spec}`);
}

/** Every local file and every package specifier reachable from the entry. */
function graph(entry: string): { files: Set<string>; packages: Map<string, string> } {
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of specifiers(file)) {
      if (spec.startsWith(".")) todo.push(resolveLocal(file, spec));
      else if (!packages.has(spec)) packages.set(spec, relative(root, file));
    }
  }
  return { files, packages };
}

describe("the Worker's import graph", () => {
  const { files, packages } = graph(resolve(root, "api/src/worker.ts"));

  it("reaches the API modules (the scan works)", () => {
    expect(files.size).toBeGreaterThan(50);
    expect([...files].map((f) => relative(root, f))).toContain("api/src/lib/model-shapes.ts");
  });

  it("imports no Node-only package", () => {
    const bad = [...packages].filter(([spec]) => nodeOnly.test(spec)).map(([spec, by]) => `${spec} (imported by ${by})`);
    expect(bad).toEqual([]);
  });

  it("takes from gpu-runner/ only the pure modules shared with the API", () => {
    const runnerFiles = [...files].map((f) => relative(root, f)).filter((f) => f.startsWith("gpu-runner/"));
    expect(runnerFiles.filter((f) => !sharedWithRunner.has(f))).toEqual([]);
  });
});
