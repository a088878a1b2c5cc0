// A runner's inference server with no model and no API behind it: for tests of what it answers before any
// generation (its token guard, models not ready yet).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startInferenceServer, type InferenceServer } from "../../gpu-runner/src/serve/server.js";
import { LocalAdapterSource } from "../../gpu-runner/src/serve/source.js";

export async function startBareInferenceServer(runnerToken: string): Promise<{ server: InferenceServer; close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "tuneserve-bare-server-"));
  const server = await startInferenceServer({ apiUrl: "http://127.0.0.1:9", runnerToken, listen: "127.0.0.1:0", models: {}, cacheDir: join(dir, "cache"), source: new LocalAdapterSource({}) });
  return {
    server,
    close: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
