// Readers for the deployment files the infra tests check against the code: every YAML document under infra/,
// the Dockerfile's stages, wrangler.toml's tables, and the files and packages a TypeScript entry point reaches.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

export const ROOT = resolve(import.meta.dirname, "../../..");

/** A YAML document: untyped; the tests read the fields they check, and a missing one fails them. */
export type Doc = any;

/** Every YAML file under infra/ with its documents; a parse error names the file. */
export function infraYaml(): { file: string; docs: Doc[] }[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name)) files.push(p);
    }
  };
  walk(join(ROOT, "infra"));
  return files.sort().map((path) => {
    const file = relative(ROOT, path);
    const docs = parseAllDocuments(readFileSync(path, "utf8"));
    return {
      file,
      docs: docs.map((d, i) => {
        if (d.errors.length) throw new Error(`${file} document ${i}: ${d.errors[0].message}`);
        return d.toJS();
      }),
    };
  });
}

/** All documents under infra/ of one kind. */
export function manifests(kind: string): Doc[] {
  return infraYaml().flatMap((f) => f.docs.filter((d) => d?.kind === kind));
}

export type DockerStage = { from: string; name?: string; copies: { from?: string; sources: string[]; dest: string }[]; env: Record<string, string>; runs: string[]; expose: string[]; entrypoint?: string[] };

/** The stages of a Dockerfile: FROM, COPY, ENV, RUN, EXPOSE and ENTRYPOINT, continuation lines joined. */
export function dockerStages(path: string): DockerStage[] {
  const lines = readFileSync(join(ROOT, path), "utf8").replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  const stages: DockerStage[] = [];
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    const stage = stages[stages.length - 1];
    if (op === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: m[1], name: m[2], copies: [], env: {}, runs: [], expose: [] });
    } else if (op === "COPY") {
      const from = /--from=(\S+)/.exec(args)?.[1];
      const parts = args.split(/\s+/).filter((a) => !a.startsWith("--"));
      stage.copies.push({ from, sources: parts.slice(0, -1), dest: parts[parts.length - 1] });
    } else if (op === "ENV") {
      for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) stage.env[m[1]] = m[2].replace(/^"|"$/g, "");
    } else if (op === "RUN") stage.runs.push(args);
    else if (op === "EXPOSE") stage.expose.push(...rest);
    else if (op === "ENTRYPOINT") stage.entrypoint = JSON.parse(args);
  }
  return stages;
}

/** The key = value pairs of each [table] of a TOML file ([[array]] tables listed in order); enough for wrangler.toml. */
export function tomlTables(path: string): Record<string, Record<string, unknown>[]> {
  const tables: Record<string, Record<string, unknown>[]> = { "": [{}] };
  let current = tables[""][0];
  for (const raw of readFileSync(join(ROOT, path), "utf8").split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const header = /^\[(\[)?([^\]]+)\]\]?$/.exec(line);
    if (header) {
      current = {};
      (tables[header[2]] ??= []).push(current);
      continue;
    }
    const kv = /^("[^"]+"|[A-Za-z0-9_.-]+)\s*=\s*(.+)$/.exec(line);
    if (!kv) throw new Error(`${path}: cannot read line "${line}"`);
    current[kv[1].replace(/"/g, "")] = JSON.parse(kv[2]);
  }
  return tables;
}

/** import/export … from "x", import "x", import("x") and new URL("./x", import.meta.url) (worker files). */
const importPatterns = [
  /^(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/gm,
  /^import\s*["']([^"']+)["']/gm,
  /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  /\bnew URL\(\s*["'](\.[^"']*)["']\s*,\s*import\.meta\.url/g,
];

/**
 * The project files `entries` reach through imports (static and dynamic, and worker files opened with `new URL`),
 * and the packages they import. Type-only imports are left out (nothing is loaded for them); so are files under
 * `skip`.
 */
export function reachedFrom(entries: string[], skip: string[] = []): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (abs: string) => {
    const rel = relative(ROOT, abs);
    if (files.has(rel) || skip.some((s) => rel.startsWith(s))) return;
    files.add(rel);
    const text = readFileSync(abs, "utf8").split("\n").filter((l) => !/^\s*(import|export) type\b/.test(l)).join("\n");
    for (const spec of importPatterns.flatMap((p) => [...text.matchAll(p)].map((m) => m[1]))) {
      if (spec.startsWith(".")) {
        let target = resolve(dirname(abs), spec);
        if (!existsSync(target) && target.endsWith(".js")) target = target.replace(/\.js$/, ".ts");
        if (!existsSync(target)) throw new Error(`${rel}: imports ${spec}, which does not exist`);
        // new URL("../", import.meta.url) names a folder, not a module.
        if (statSync(target).isFile()) visit(target);
      } else if (!spec.startsWith("node:") && !builtinModules.includes(spec)) {
        packages.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);
      }
    }
  };
  for (const e of entries) visit(join(ROOT, e));
  return { files, packages };
}
