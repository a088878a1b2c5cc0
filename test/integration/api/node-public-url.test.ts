// The Node entry behind an address others use (serve --host 0.0.0.0, a proxy): TUNESERVE_PUBLIC_URL is the origin its
// presigned /blobs/ links point at, as on the Worker. Without it they named the listening address (http://0.0.0.0:…),
// which a runner on another machine resolves to itself.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startServer } from "../../../api/src/node.js";
import { microLlamaAdapterForm, registerMicroLlama } from "../../helpers/jobs.js";
import type { TestApi } from "../../helpers/api.js";

let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), "tuneserve-public-url-"))));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The links GET /v1/adapters/{id}/files hands out for an adapter uploaded to a server started with `env`. */
async function adapterLinks(env: Record<string, string>, name: string): Promise<string[]> {
  const server = await startServer({ port: 0, dataDir: join(dir, name), env });
  try {
    const call: TestApi["call"] = (method, path, opts = {}) =>
      fetch(server.url + path, {
        method,
        headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.json !== undefined ? { "content-type": "application/json" } : {}) },
        body: opts.json !== undefined ? JSON.stringify(opts.json) : (opts.body as BodyInit | undefined),
      });
    await registerMicroLlama({ call, admin: server.adminToken } as TestApi);
    const tenant = await (await call("POST", "/admin/v1/tenants", { token: server.adminToken, json: { name: "t" } })).json();
    const adapter = await call("POST", "/v1/adapters", { token: tenant.api_key, body: microLlamaAdapterForm() });
    expect(adapter.status).toBe(201);
    const files = await (await call("GET", `/v1/adapters/${(await adapter.json()).id}/files`, { token: tenant.api_key })).json();
    return files.data.map((f: { url: string }) => f.url);
  } finally {
    await server.close();
  }
}

it("points presigned links at TUNESERVE_PUBLIC_URL when it is set, and at the listening address otherwise", async () => {
  const links = await adapterLinks({ TUNESERVE_PUBLIC_URL: "https://api.example.com/" }, "public");
  expect(links).toHaveLength(2);
  for (const link of links) expect(link).toMatch(/^https:\/\/api\.example\.com\/blobs\//);
  for (const link of await adapterLinks({}, "listening")) expect(link).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/blobs\//);
});

it("refuses a TUNESERVE_PUBLIC_URL that is not an absolute URL, naming it", async () => {
  await expect(startServer({ port: 0, dataDir: join(dir, "bad"), env: { TUNESERVE_PUBLIC_URL: "api.example.com" } })).rejects.toThrow(/TUNESERVE_PUBLIC_URL/);
});
