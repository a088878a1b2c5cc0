// Base model folders: configured ones used in place, blob-store ones downloaded once per revision of their files
// through URLs and reused, a stale copy removed once nothing holds it.
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { listenLocal, type LocalServer } from "../../helpers/http-server.js";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
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

/** The copy's folder, released at once (the tests that need it held keep the handle). */
const dirOf = async (cache: ModelCache, model: Parameters<ModelCache["acquire"]>[0], signal?: AbortSignal) => {
  const copy = await cache.acquire(model, signal);
  copy.release();
  return copy.dir;
};

describe("ModelCache", () => {
  it("uses a configured folder in place", async () => {
    const cache = new ModelCache([{ id: "micro", dir: "/models/micro" }], join(dir, "a"));
    expect(await dirOf(cache, { id: "micro", source: "blob:models/micro/", files: urls(["config.json"]) })).toBe("/models/micro");
    expect(cache.ids).toEqual(["micro"]);
  });

  it("downloads a blob model once, concurrent callers sharing the download", async () => {
    const cache = new ModelCache([{ id: "qwen", dir: null }], join(dir, "b"));
    const model = { id: "qwen", source: "blob:models/qwen/", revision: "r1", files: urls(["config.json", "model.safetensors", "tokenizer.json"]) };
    hits.length = 0;
    const [d1, d2] = await Promise.all([dirOf(cache, model), dirOf(cache, model)]);
    expect(dirname(d1)).toBe(join(dir, "b", "models", "qwen"));
    expect(d2).toBe(d1);
    expect(await readFile(join(d1, "model.safetensors"), "utf8")).toBe("weights");
    expect(hits.sort()).toEqual(["config.json", "model.safetensors", "tokenizer.json"]);
    // A new cache object (a restarted runner) finds the completed folder and fetches nothing.
    const restarted = new ModelCache([{ id: "qwen", dir: null }], join(dir, "b"));
    await restarted.open();
    expect(await dirOf(restarted, model)).toBe(d1);
    expect(hits).toHaveLength(3);
  });

  it("fetches a model whose files were replaced under the same names into a new folder, keeping the old copy while it is held", async () => {
    const root = join(dir, "rev");
    const cache = new ModelCache([{ id: "qwen", dir: null }], root);
    const v1 = { id: "qwen", source: "blob:models/qwen/", revision: "r1", files: urls(["config.json", "model.safetensors"]) };
    const training = await cache.acquire(v1);
    expect(await readFile(join(training.dir, "model.safetensors"), "utf8")).toBe("weights");

    // The operator re-uploads the weights under the same name: the API lists a new revision.
    files["model.safetensors"] = "new weights";
    try {
      const v2 = { ...v1, revision: "r2" };
      const serving = await cache.acquire(v2);
      expect(serving.dir).not.toBe(training.dir);
      expect(await readFile(join(serving.dir, "model.safetensors"), "utf8")).toBe("new weights");
      // The job training on the old copy still reads its files ...
      expect(await readFile(join(training.dir, "model.safetensors"), "utf8")).toBe("weights");
      // ... until it is done with them: a stale copy nothing holds is removed.
      training.release();
      await vi.waitFor(async () => expect(await readdir(join(root, "models", "qwen"))).toEqual([basename(serving.dir)]));
      // The current copy stays when released: the next job reuses it.
      serving.release();
      hits.length = 0;
      expect(await dirOf(cache, v2)).toBe(serving.dir);
      expect(hits).toEqual([]);
    } finally {
      files["model.safetensors"] = "weights";
    }
  });

  it("keeps a shared download going for the others when one caller gives up, and stops it when all have", async () => {
    const cache = new ModelCache([{ id: "slow", dir: null }], join(dir, "s"));
    const model = { id: "slow", source: "blob:models/slow/", files: urls(["config.json", "slow.safetensors"]) };
    const quitter = new AbortController();
    const first = dirOf(cache, model, quitter.signal);
    const second = dirOf(cache, model, new AbortController().signal);
    quitter.abort(new Error("job paused"));
    await expect(first).rejects.toThrow("job paused");
    expect(await readFile(join(await second, "slow.safetensors"), "utf8")).toBe("slow weights");

    const other = new ModelCache([{ id: "slow", dir: null }], join(dir, "s2"));
    const [a, b] = [new AbortController(), new AbortController()];
    const both = [dirOf(other, model, a.signal), dirOf(other, model, b.signal)];
    a.abort(new Error("gone a"));
    b.abort(new Error("gone b"));
    await expect(both[0]).rejects.toThrow("gone a");
    await expect(both[1]).rejects.toThrow("gone b");
    // The aborted download left no folder that looks complete (at most its .part- folder); the next caller completes it.
    for (const name of await readdir(join(dir, "s2", "models", "slow")).catch(() => [])) {
      expect(name).toMatch(/^\.part-[0-9a-f]{24}$/);
      expect(await readdir(join(dir, "s2", "models", "slow", name))).not.toContain(".tuneserve-complete.json");
    }
    expect(await readFile(join(await dirOf(other, model), "slow.safetensors"), "utf8")).toBe("slow weights");
  });

  it("leaves nothing that looks complete when a download fails part-way, names the model, the file and the status, and resumes", async () => {
    const root = join(dir, "d");
    const cache = new ModelCache([{ id: "gone", dir: null }], root);
    const model = { id: "gone", source: "blob:models/gone/", revision: "r1", files: urls(["config.json", "missing.bin"]) };
    const err = (await dirOf(cache, model).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^base model gone: downloading missing\.bin: GET .*\/missing\.bin\?…: 404 no such object/);
    expect(err.message).not.toContain("abc");
    const [part, ...rest] = await readdir(join(root, "models", "gone"));
    expect(rest).toEqual([]);
    expect(part).toMatch(/^\.part-/);
    expect(await readdir(join(root, "models", "gone", part))).toEqual(["config.json"]);

    // The object appears (or its URL is fresh again): the next try fetches only what is missing.
    files["missing.bin"] = "late";
    try {
      hits.length = 0;
      const d = await dirOf(cache, model);
      expect(hits).toEqual(["missing.bin"]);
      expect(await readFile(join(d, "missing.bin"), "utf8")).toBe("late");
      expect(await readdir(join(root, "models", "gone"))).toEqual([basename(d)]);
    } finally {
      delete files["missing.bin"];
    }
  });

  it("clears at start what a killed runner left: broken-off downloads, the old layout, models no longer configured", async () => {
    const root = join(dir, "c");
    const models = join(root, "models");
    // A download killed before its rename: all files and even the marker, but still under its temporary name.
    await mkdir(join(models, "qwen", ".part-1234"), { recursive: true });
    await writeFile(join(models, "qwen", ".part-1234", "config.json"), "half");
    await writeFile(join(models, "qwen", ".part-1234", ".tuneserve-complete.json"), '{"files":["config.json"]}');
    // The layout before revisions: the files right in the model's folder.
    await writeFile(join(models, "qwen", "config.json"), "stale");
    await writeFile(join(models, "qwen", ".tuneserve-complete.json"), '{"files":["config.json"]}');
    // A download of a copy broken off: kept, for the next try to resume.
    await mkdir(join(models, "qwen", ".part-0123456789abcdef01234567"), { recursive: true });
    await mkdir(join(models, "dropped", "0123456789abcdef01234567"), { recursive: true });
    await mkdir(join(models, "now-local", ".part-99"), { recursive: true });
    // Not the cache's: an operator's own model folder that happens to sit under models/ is left alone.
    await mkdir(join(models, "mine"), { recursive: true });
    await writeFile(join(models, "mine", "config.json"), "{}");
    await mkdir(join(models, "configured", "weights"), { recursive: true });
    const cache = new ModelCache([{ id: "qwen", dir: null }, { id: "now-local", dir: "/models/local" }, { id: "configured", dir: join(models, "configured", "weights") }], root);
    await cache.open();
    expect((await readdir(models)).sort()).toEqual(["configured", "mine", "qwen"]);
    expect(await readdir(join(models, "configured"))).toEqual(["weights"]);
    expect(await readdir(join(models, "qwen"))).toEqual([".part-0123456789abcdef01234567"]);
    const d = await dirOf(cache, { id: "qwen", source: "blob:models/qwen/", files: urls(["config.json"]) });
    expect(await readFile(join(d, "config.json"), "utf8")).toBe(files["config.json"]);
  });

  describe("a download overlapping an upload of new files", () => {
    /** One object: its bytes and the version (ETag) the store lists and answers it with. */
    type Stored = { body: string; version: string };
    let store: Record<string, Stored>;
    /** Runs once, when the first object has been served: the operator's upload lands mid-download. */
    let onFirstGet: (() => void) | null;
    let blob: LocalServer;
    /** How the store answers: "if-match" honours If-Match (S3, R2, the API's /blobs/); "etag" ignores it but names the ETag (s3rver); "bare" says neither (an older API). */
    let mode: "if-match" | "etag" | "bare";
    beforeAll(async () => {
      blob = await listenLocal((req, res) => {
        const name = new URL(req.url!, "http://x").pathname.slice(1);
        const o = store[name];
        if (!o) return void res.writeHead(404).end("no such object");
        const ifMatch = req.headers["if-match"];
        if (mode === "if-match" && ifMatch !== undefined && ifMatch !== `"${o.version}"`) return void res.writeHead(412).end("<Code>PreconditionFailed</Code>");
        res.writeHead(200, mode === "bare" ? {} : { etag: `"${o.version}"` }).end(o.body);
        const hook = onFirstGet;
        onFirstGet = null;
        hook?.();
      });
    });
    afterAll(() => blob.close());

    const listing = (revision: string) => ({
      id: "mixed",
      source: "blob:models/mixed/",
      revision,
      files: Object.fromEntries(Object.keys(store).map((n) => [n, `${blob.url}/${n}?X-Signature=abc`])),
      objects: Object.fromEntries(Object.entries(store).map(([n, o]) => [n, { size: o.body.length, version: o.version }])),
    });

    for (const m of ["if-match", "etag", "bare"] as const) {
      it(`refuses to install a copy mixing the old and the new files (store: ${m}), and the next listing's revision downloads whole`, async () => {
        mode = m;
        store = { "config.json": { body: '{"model_type":"llama"}', version: "c1" }, "model.safetensors": { body: "old weights", version: "w1" } };
        const root = join(dir, `mixed-${m}`);
        const cache = new ModelCache([{ id: "mixed", dir: null }], root);
        const r1 = listing("r1");
        // Retrained weights (one byte longer, so that even a store naming no version gives them away by their size).
        onFirstGet = () => void (store["model.safetensors"] = { body: "new weights!", version: "w2" });
        const err = (await dirOf(cache, r1).catch((e: unknown) => e)) as Error & { retryable?: boolean };
        expect(err.message).toMatch(/^base model mixed: downloading model\.safetensors: replaced in the blob store since the API listed it .*revision r1/);
        expect(err.retryable).toBe(true);
        // Nothing that looks like a copy of r1: only the broken-off download.
        for (const name of await readdir(join(root, "models", "mixed"))) expect(name).toMatch(/^\.part-/);
        // The caller asks the API again (serving's retry, the job's next lease): the new listing names r2, which downloads whole.
        const d = await dirOf(cache, listing("r2"));
        expect(await readFile(join(d, "model.safetensors"), "utf8")).toBe("new weights!");
        expect(await readFile(join(d, "config.json"), "utf8")).toBe('{"model_type":"llama"}');
      });
    }
  });

  it("refuses file names that would leave the cache folder", async () => {
    const cache = new ModelCache([{ id: "evil", dir: null }], join(dir, "e"));
    await expect(cache.acquire({ id: "evil", source: "blob:models/evil/", files: { "../x": `${url}/config.json` } })).rejects.toThrow(/not a plain relative path/);
  });

  it("explains a local source folder this runner cannot read", async () => {
    const cache = new ModelCache([{ id: "far", dir: null }], join(dir, "f"));
    await expect(cache.acquire({ id: "far", source: "/nowhere/far", files: null })).rejects.toThrow(/configure it as far=\/local\/folder/);
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
