// Where adapter files come from on a cache miss: the API hands out presigned GET URLs for one adapter
// (GET /internal/v1/adapters/{model_id}/files, runner token), or a local folder map serves tests and tools.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";

export const ADAPTER_FILES = ["adapter_config.json", "adapter_model.safetensors"] as const;

/** An adapter's metadata and file bytes. */
export type FetchedAdapter = { model: string; baseModel: string; files: Record<(typeof ADAPTER_FILES)[number], Uint8Array> };

/** A fetch that failed; `notFound` when the adapter does not exist (a 404 to the caller, no retry). */
export class SourceError extends Error {
  constructor(
    message: string,
    readonly notFound: boolean,
  ) {
    super(message);
    this.name = "SourceError";
  }
}

export interface AdapterSource {
  fetch(model: string): Promise<FetchedAdapter>;
}

export const adapterFilesAnswer = z.object({
  model: z.string(),
  base_model: z.string(),
  expires_at: z.number().int(),
  files: z.array(z.object({ name: z.enum(ADAPTER_FILES), bytes: z.number().int(), url: z.string() })),
});

/**
 * Asks the API for presigned URLs, then downloads both files. A download that receives nothing for `stallMs`
 * (default 30 s) is aborted: a bound on silence rather than on total time, since adapters range from kilobytes
 * to hundreds of megabytes and a total bound would either cut off large ones on slow links or leave a hung
 * connection holding its requests for minutes (the HTTP client's own default is ~5 minutes).
 */
export class ApiAdapterSource implements AdapterSource {
  constructor(
    private readonly apiUrl: string,
    private readonly runnerToken: string,
    private readonly stallMs = 30_000,
  ) {}

  async fetch(model: string): Promise<FetchedAdapter> {
    const abort = new AbortController();
    let waitingFor = "the API's answer";
    let timer: ReturnType<typeof setTimeout> | undefined;
    /** Data came: the stall clock starts again. */
    const progress = (next = waitingFor) => {
      waitingFor = next;
      clearTimeout(timer);
      timer = setTimeout(() => abort.abort(), this.stallMs);
    };
    const signal = abort.signal;
    try {
      progress();
      const url = new URL(`/internal/v1/adapters/${encodeURIComponent(model)}/files`, this.apiUrl);
      const res = await fetch(url, { headers: { Authorization: `Bearer ${this.runnerToken}` }, signal });
      if (res.status === 404) throw new SourceError(`adapter ${model}: not found in the API`, true);
      if (!res.ok) throw new SourceError(`adapter ${model}: the API answered ${res.status} ${(await res.text()).slice(0, 200)}`, false);
      const answer = adapterFilesAnswer.parse(await res.json());
      const files = {} as FetchedAdapter["files"];
      for (const name of ADAPTER_FILES) {
        const f = answer.files.find((x) => x.name === name);
        if (!f) throw new SourceError(`adapter ${model}: the API listed no ${name}`, false);
        progress(`GET ${name}`);
        // Local-store links are relative to the API; S3 links are absolute.
        const got = await fetch(new URL(f.url, this.apiUrl), { signal });
        if (!got.ok) throw new SourceError(`adapter ${model}: GET ${name} answered ${got.status}`, false);
        files[name] = await readBody(got, () => progress());
        if (files[name].length !== f.bytes) throw new SourceError(`adapter ${model}: ${name} has ${files[name].length} bytes, the API said ${f.bytes}`, false);
      }
      return { model: answer.model, baseModel: answer.base_model, files };
    } catch (err) {
      if (!signal.aborted) throw err;
      throw new SourceError(`adapter ${model}: ${waitingFor} sent nothing for ${this.stallMs / 1000} s; gave up (the next request fetches it again)`, false);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A response body's bytes, calling `onChunk` as each part arrives. */
async function readBody(res: Response, onChunk: () => void): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  const reader = res.body.getReader();
  for (let got = await reader.read(); !got.done; got = await reader.read()) {
    parts.push(got.value);
    onChunk();
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** Adapters in local folders, by model id (tests, tools, air-gapped runners). */
export class LocalAdapterSource implements AdapterSource {
  constructor(private readonly folders: Record<string, { dir: string; baseModel: string }>) {}

  async fetch(model: string): Promise<FetchedAdapter> {
    const entry = this.folders[model];
    if (!entry) throw new SourceError(`adapter ${model}: no local folder for it`, true);
    const files = {} as FetchedAdapter["files"];
    for (const name of ADAPTER_FILES) files[name] = new Uint8Array(await readFile(join(entry.dir, name)));
    return { model, baseModel: entry.baseModel, files };
  }
}
