// `tuneserve serve` started a second time on a data folder another serve is running on: it says so and exits,
// and the first one goes on serving.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnCli, type Proc } from "./harness.js";

let dataDir: string;
let first: Proc;
let url: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "tuneserve-e2e-data-folder-"));
  first = spawnCli(["serve", "--port", "0", "--data", dataDir]);
  url = (await first.waitLine((l) => l.msg === "tuneserve listening", 90_000)).url as string;
});

afterAll(async () => {
  expect(await first?.stop("SIGTERM")).toBe(0);
  await rm(dataDir, { recursive: true, force: true });
});

describe("a second tuneserve serve on one data folder", () => {
  it("exits naming the data folder and what to do, and the first one still answers", async () => {
    const second = spawnCli(["serve", "--port", "0", "--data", dataDir]);
    const exited = new Promise<number | null>((ok) => second.child.once("exit", ok));
    const said = await second.waitLine((l) => typeof l.text === "string" && l.text.startsWith("another tuneserve serve"), 90_000);
    expect(said.text).toBe(`another tuneserve serve is running on the data folder ${dataDir} (its runner 'embedded' is live); stop it first, or give this one another --data`);
    expect(await exited).toBe(1);
    expect(second.lines.some((l) => l.msg === "tuneserve listening")).toBe(false);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});
