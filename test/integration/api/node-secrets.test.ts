// The Node entry's secrets.json: made once, read back, and never replaced when it is damaged (new secrets would
// void the tokens, runners and signed links that use the old ones).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startServer } from "../../../api/src/node.js";

let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), "tuneserve-node-secrets-"))));
afterAll(() => rm(dir, { recursive: true, force: true }));

it("keeps the secrets it made across restarts", async () => {
  const dataDir = join(dir, "kept");
  const first = await startServer({ port: 0, dataDir, env: {} });
  await first.close();
  const second = await startServer({ port: 0, dataDir, env: {} });
  await second.close();
  expect(second.adminToken).toBe(first.adminToken);
  expect(second.runnerToken).toBe(first.runnerToken);
});

it("refuses a damaged secrets.json, naming it, and leaves it as it was", async () => {
  for (const [name, text] of [["truncated", '{"admin": "adm_1234'], ["fields", '{"admin": "adm_0123456789abcdef"}']]) {
    const dataDir = join(dir, name);
    const first = await startServer({ port: 0, dataDir, env: {} });
    await first.close();
    const path = join(dataDir, "secrets.json");
    await writeFile(path, text);
    await expect(startServer({ port: 0, dataDir, env: {} })).rejects.toThrow(`${path}: not a JSON object with string fields admin, runner, blob`);
    expect(await readFile(path, "utf8")).toBe(text);
  }
});
