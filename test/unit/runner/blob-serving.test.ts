// Blob-prefix base models reaching the inference server: against a small real HTTP server playing the API's
// files route and the blob store — unknown ids are dropped, failed downloads are retried, nothing throws.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { listenLocal, type LocalServer } from "../../helpers/http-server.js";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { RunnerApiClient } from "../../../gpu-runner/src/runner/api-client.js";
import { BlobModelServing } from "../../../gpu-runner/src/runner/blob-serving.js";
import { ModelCache } from "../../../gpu-runner/src/runner/model-cache.js";
import type { Logger } from "../../../gpu-runner/src/runner/executor-deps.js";

const token = "run_test-token-0123456789";
const files: Record<string, string> = { "config.json": '{"model_type":"llama"}', "model.safetensors": "weights" };
let dir: string;
let server: LocalServer;
let url: string;
/** Blob GETs still to fail with 404 (an object that vanished between listing and download). */
let failGets = 0;
const fileRouteHits: string[] = [];
/** The revision the files route names (a test replacing the files changes it, as the API would). */
let revision = "r1";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-blob-serving-"));
  server = await listenLocal((req, res) => {
    const path = new URL(req.url!, "http://x").pathname;
    const route = path.match(/^\/internal\/v1\/models\/([^/]+)\/files$/);
    if (route) {
      fileRouteHits.push(route[1]);
      if (req.headers.authorization !== `Bearer ${token}`) return void res.writeHead(401).end();
      if (route[1] === "old-api") {
        // An API that predates the files route: Hono's plain 404 for an unknown path, no param.
        res.writeHead(404, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ error: { code: "not_found", message: "no route GET /internal/v1/models/old-api/files", param: null, request_id: "r" } }));
      }
      if (route[1] !== "blobby") {
        res.writeHead(404, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ error: { code: "not_found", message: `base model '${route[1]}' not found`, param: "model_id", request_id: "r" } }));
      }
      res.writeHead(200, { "content-type": "application/json" });
      const links = Object.fromEntries(Object.keys(files).map((n) => [n, `${url}/blobs/models/blobby/${n}?sig=secret`]));
      return void res.end(JSON.stringify({ id: "blobby", source: "blob:models/blobby/", files: links, revision, expires_at: 1 }));
    }
    const name = path.replace("/blobs/models/blobby/", "");
    if (failGets > 0 || !(name in files)) return void (failGets--, res.writeHead(404).end("no such object"));
    res.writeHead(200).end(files[name]);
  });
  url = server.url;
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const running: BlobModelServing[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
  failGets = 0;
  fileRouteHits.length = 0;
  revision = "r1";
  files["model.safetensors"] = "weights";
});

/** A BlobModelServing on a fresh cache folder; `added` records what reached the inference server. */
function setup(ids: string[], addModel?: (id: string, dir: string) => Promise<void>, replaceModel?: (id: string, dir: string) => Promise<void>, checkEveryMs = 60_000) {
  const lines: Array<{ level: string; msg: string; data: Record<string, unknown> }> = [];
  const log: Logger = (level, msg, data = {}) => void lines.push({ level, msg, data });
  const added: Array<[string, string]> = [];
  const replaced: Array<[string, string]> = [];
  const states: Array<[string, string | null]> = [];
  const givenUp: string[] = [];
  const cacheDir = join(dir, `c${Math.random().toString(36).slice(2)}`);
  const serving = new BlobModelServing({
    ids,
    client: new RunnerApiClient(url, token, { attempts: 2, baseMs: 5, maxMs: 10 }),
    cache: new ModelCache(ids.map((id) => ({ id, dir: null })), cacheDir),
    addModel: addModel ?? (async (id, d) => void added.push([id, d])),
    replaceModel: replaceModel ?? (async (id, d) => void replaced.push([id, d])),
    modelNotReady: (id, error) => void states.push([id, error]),
    log,
    giveUp: (id) => void givenUp.push(id),
    retry: { firstMs: 10, maxMs: 40 },
    checkEveryMs,
  });
  running.push(serving);
  return { serving, lines, added, replaced, states, givenUp, cacheDir };
}

async function until<T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 10));
  }
}

describe("BlobModelServing", () => {
  it("downloads a known model into the cache and adds it to the server", async () => {
    const { serving, added, lines, cacheDir } = setup(["blobby"]);
    expect(await serving.lookUp()).toEqual([]);
    serving.start();
    await until("the model to be served", () => (added.length ? true : undefined));
    expect(added).toHaveLength(1);
    expect(added[0][0]).toBe("blobby");
    expect(dirname(added[0][1])).toBe(join(cacheDir, "models", "blobby"));
    expect(await readFile(join(added[0][1], "model.safetensors"), "utf8")).toBe("weights");
    expect(serving.servedIds).toEqual(["blobby"]);
    expect(lines.find((l) => l.msg === "serving base model")?.data).toMatchObject({ model: "blobby" });
    // The look-up's URLs are used for the first download: one call to the files route in all.
    expect(fileRouteHits).toEqual(["blobby"]);
  });

  it("serves files replaced in the blob store from a new copy, and removes the old one once its worker closed", async () => {
    let oldWorkerClosed!: () => void;
    const closing = new Promise<void>((ok) => (oldWorkerClosed = ok));
    const replaced: Array<[string, string]> = [];
    const { serving, added, lines, cacheDir } = setup(["blobby"], undefined, async (id, d) => {
      replaced.push([id, d]);
      await closing;
    }, 30);
    await serving.lookUp();
    serving.start();
    const [, first] = await until("the model to be served", () => added[0]);
    await new Promise((ok) => setTimeout(ok, 100));
    // Unchanged files: checks fetch nothing and replace nothing.
    expect(replaced).toEqual([]);
    expect(fileRouteHits.length).toBeGreaterThan(1);

    files["model.safetensors"] = "new weights";
    revision = "r2";
    const [id, second] = await until("the model to be served from its new files", () => replaced[0]);
    expect(id).toBe("blobby");
    expect(second).not.toBe(first);
    expect(await readFile(join(second, "model.safetensors"), "utf8")).toBe("new weights");
    // The old worker still runs requests on the old copy until it closes.
    expect(await readFile(join(first, "model.safetensors"), "utf8")).toBe("weights");
    oldWorkerClosed();
    await until("the old copy to be removed", () => (lines.some((l) => l.msg === "serving the new files of a base model") ? true : undefined));
    await vi.waitFor(async () => expect(await readdir(join(cacheDir, "models", "blobby"))).toEqual([basename(second)]));
    expect(replaced).toHaveLength(1);
  });

  it("keeps serving the old files when the new ones do not load, trying again at the next check", async () => {
    const { serving, added, lines, cacheDir } = setup(["blobby"], undefined, async () => {
      throw new Error("config.json: hidden_size missing");
    }, 30);
    await serving.lookUp();
    serving.start();
    const [, first] = await until("the model to be served", () => added[0]);
    revision = "r2";
    const err = await until("the error", () => lines.find((l) => l.msg === "the new files of a served base model could not be loaded; still serving its previous files"));
    expect(String(err.data.error)).toMatch(/hidden_size missing/);
    expect(serving.servedIds).toEqual(["blobby"]);
    // The copy served from stays; the one that failed to load is not held, and goes at the next sweep.
    expect(await readFile(join(first, "model.safetensors"), "utf8")).toBe("weights");
    expect(await readdir(join(cacheDir, "models", "blobby"))).toContain(basename(first));
  });

  it("tells the inference server what requests for a model not served yet are to hear: downloading, then the last error", async () => {
    failGets = 1;
    const { serving, added, states } = setup(["blobby"]);
    await serving.lookUp();
    expect(states).toEqual([["blobby", null]]);
    serving.start();
    await until("the model to be served", () => (added.length ? true : undefined));
    expect(states).toHaveLength(2);
    expect(states[1][1]).toMatch(/^base model blobby: downloading (config\.json|model\.safetensors): GET .*: 404 no such object \(the runner tries again\)$/);
  });

  it("reports an id the API does not know as an error and never tries it again", async () => {
    const { serving, lines, added, states } = setup(["blobby", "ghost"]);
    expect(await serving.lookUp()).toEqual(["ghost"]);
    // Nothing downloads it: requests for it are not told to wait for its files (503 model_loading).
    expect(states.filter(([id]) => id === "ghost")).toEqual([]);
    const err = lines.find((l) => l.level === "error");
    expect(err?.data.model).toBe("ghost");
    expect(String(err?.data.error)).toMatch(/base model ghost: the API has no files for it \(.*404 not_found base model 'ghost' not found\); register it with POST \/admin\/v1\/models/);
    serving.start();
    await until("blobby to be served", () => (added.length ? true : undefined));
    expect(added.map(([id]) => id)).toEqual(["blobby"]);
    expect(fileRouteHits.filter((h) => h === "ghost")).toHaveLength(1);
  });

  it("keeps a model registered when the 404 is not about the model (an API without the files route)", async () => {
    const { serving, lines } = setup(["old-api"]);
    expect(await serving.lookUp()).toEqual([]);
    expect(lines.filter((l) => l.level === "error")).toEqual([]);
  });

  it("retries a failed download with fresh URLs until it works, without throwing", async () => {
    failGets = 3;
    const { serving, lines, added } = setup(["blobby"]);
    await serving.lookUp();
    serving.start();
    await until("the model to be served after retries", () => (added.length ? true : undefined));
    const warns = lines.filter((l) => l.msg === "base model not served yet; trying again");
    expect(warns.length).toBeGreaterThanOrEqual(1);
    expect(String(warns[0].data.error)).toMatch(/^base model blobby: downloading (config\.json|model\.safetensors): GET .*\?…: 404 no such object/);
    expect(String(warns[0].data.error)).not.toContain("secret");
    expect(fileRouteHits.length).toBe(1 + warns.length);
  });

  it("gives up on a model whose files do not load, naming the folder and the fix", async () => {
    const { serving, lines, givenUp } = setup(["blobby"], async () => {
      throw new Error("config.json: hidden_size missing");
    });
    await serving.lookUp();
    serving.start();
    const err = await until("the error", () => lines.find((l) => l.msg === "not serving base model"));
    expect(String(err.data.error)).toMatch(/could not be loaded for serving: config\.json: hidden_size missing; fix the files under blob:models\/blobby\//);
    await new Promise((ok) => setTimeout(ok, 100));
    expect(fileRouteHits).toEqual(["blobby"]);
    expect(serving.servedIds).toEqual([]);
    // The runner is told once, so that it stops offering the model.
    expect(givenUp).toEqual(["blobby"]);
  });

  it("keeps trying while the API is unreachable, and stop() ends the retries", async () => {
    const down = new RunnerApiClient("http://127.0.0.1:1", token, { attempts: 1, baseMs: 1, maxMs: 1 });
    const lines: string[] = [];
    const serving = new BlobModelServing({ ids: ["blobby"], client: down, cache: new ModelCache([], dir), addModel: async () => {}, replaceModel: async () => {}, log: (_l, msg) => void lines.push(msg), retry: { firstMs: 5, maxMs: 5 } });
    expect(await serving.lookUp()).toEqual([]); // unreachable is not unknown: the model stays offered
    serving.start();
    await until("a few rounds", () => (lines.filter((m) => m === "base model not served yet; trying again").length >= 3 ? true : undefined));
    await serving.stop();
    const n = lines.length;
    await new Promise((ok) => setTimeout(ok, 50));
    expect(lines.length).toBe(n);
  });
});
