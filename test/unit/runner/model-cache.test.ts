// Base model folders: configured ones used in place, blob-store ones downloaded once through URLs and reused.
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { listenLocal, type LocalServer } from "../../helpers/http-server.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelCache } from "../../../gpu-runner/src/runner/model-cache.js";
import { nextPollSeconds } from "../../../gpu-runner/src/runner/lease-loop.js";

let dir: string;
let server: LocalServer;
let url: string;
const hits: string[] = [];
const files: Record<string, string> = { "config.json": '{"model_type":"llama"}', "model.safetensors": "weights", "tokenizer.json": "{}", "slow.safetensors": "slow weights" };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-model-cache-"));
  server = await listenLocal((req, res) => {
    const name = new URL(req.url!, "http://x").pathname.slice(1);
    hits.push(name);
    if (!(name in files)) return void res.writeHead(404).end("no such object");
    // "slow" files arrive after a pause, so that a caller can give up while they download.
    if (name.startsWith("slow")) return void setTimeout(() => res.writeHead(200).end(files[name]), 300);
    res.writeHead(200).end(files[name]);
  });
  url = server.url;
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const urls = (names: string[]) => Object.fromEntries(names.map((n) => [n, `${url}/${n}?X-Signature=abc`]));

describe("ModelCache", () => {
  it("uses a configured folder in place", async () => {
    const cache = new ModelCache([{ id: "micro", dir: "/models/micro" }], join(dir, "a"));
    expect(await cache.resolve({ id: "micro", source: "blob:models/micro/", files: urls(["config.json"]) })).toBe("/models/micro");
    expect(cache.ids).toEqual(["micro"]);
  });

  it("downloads a blob model once, concurrent callers sharing the download", async () => {
    const cache = new ModelCache([{ id: "qwen", dir: null }], join(dir, "b"));
    const model = { id: "qwen", source: "blob:models/qwen/", files: urls(["config.json", "model.safetensors", "tokenizer.json"]) };
    hits.length = 0;
    const [d1, d2] = await Promise.all([cache.resolve(model), cache.resolve(model)]);
    expect(d1).toBe(join(dir, "b", "models", "qwen"));
    expect(d2).toBe(d1);
    expect(await readFile(join(d1, "model.safetensors"), "utf8")).toBe("weights");
    expect(hits.sort()).toEqual(["config.json", "model.safetensors", "tokenizer.json"]);
    // A new cache object (a restarted runner) finds the completed folder and fetches nothing.
    await new ModelCache([{ id: "qwen", dir: null }], join(dir, "b")).resolve(model);
    expect(hits).toHaveLength(3);
  });

  it("keeps a shared download going for the others when one caller gives up, and stops it when all have", async () => {
    const cache = new ModelCache([{ id: "slow", dir: null }], join(dir, "s"));
    const model = { id: "slow", source: "blob:models/slow/", files: urls(["config.json", "slow.safetensors"]) };
    const quitter = new AbortController();
    const first = cache.resolve(model, quitter.signal);
    const second = cache.resolve(model, new AbortController().signal);
    quitter.abort(new Error("job paused"));
    await expect(first).rejects.toThrow("job paused");
    expect(await readFile(join(await second, "slow.safetensors"), "utf8")).toBe("slow weights");

    const other = new ModelCache([{ id: "slow", dir: null }], join(dir, "s2"));
    const [a, b] = [new AbortController(), new AbortController()];
    const both = [other.resolve(model, a.signal), other.resolve(model, b.signal)];
    a.abort(new Error("gone a"));
    b.abort(new Error("gone b"));
    await expect(both[0]).rejects.toThrow("gone a");
    await expect(both[1]).rejects.toThrow("gone b");
    // The aborted download left no complete folder: the next caller fetches it whole.
    expect(await readFile(join(await other.resolve(model), "slow.safetensors"), "utf8")).toBe("slow weights");
  });

  it("fetches again when an earlier download did not finish", async () => {
    const root = join(dir, "c");
    await mkdir(join(root, "models", "qwen"), { recursive: true });
    await writeFile(join(root, "models", "qwen", "config.json"), "half");
    const d = await new ModelCache([{ id: "qwen", dir: null }], root).resolve({ id: "qwen", source: "blob:models/qwen/", files: urls(["config.json"]) });
    expect(await readFile(join(d, "config.json"), "utf8")).toBe(files["config.json"]);
  });

  it("names the object and the status when a download fails, without the signature", async () => {
    const err = (await new ModelCache([{ id: "gone", dir: null }], join(dir, "d")).resolve({ id: "gone", source: "blob:models/gone/", files: urls(["missing.bin"]) }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/GET .*\/missing\.bin\?…: 404 no such object/);
    expect(err.message).not.toContain("abc");
  });

  it("refuses file names that would leave the cache folder", async () => {
    const cache = new ModelCache([{ id: "evil", dir: null }], join(dir, "e"));
    await expect(cache.resolve({ id: "evil", source: "blob:models/evil/", files: { "../x": `${url}/config.json` } })).rejects.toThrow(/not a plain relative path/);
  });

  it("explains a local source folder this runner cannot read", async () => {
    const cache = new ModelCache([{ id: "far", dir: null }], join(dir, "f"));
    await expect(cache.resolve({ id: "far", source: "/nowhere/far", files: null })).rejects.toThrow(/configure it as far=\/local\/folder/);
  });
});

describe("lease polling", () => {
  it("doubles the wait while the queue stays empty, up to the maximum", () => {
    const o = { pollSeconds: 1, pollMaxSeconds: 10 };
    const waits = [1];
    for (let i = 0; i < 5; i++) waits.push(nextPollSeconds(waits[waits.length - 1], o));
    expect(waits).toEqual([1, 2, 4, 8, 10, 10]);
  });
});
