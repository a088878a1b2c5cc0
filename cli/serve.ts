// `tuneserve serve`: the embedded default — the API, one runner (training in a worker thread) and the
// built-in base model, in one process on one data folder (SQLite file + local blob store).
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { startServer } from "../api/src/node.js";
import { parseFlags, printedHelp, UsageError } from "../gpu-runner/src/cli/args.js";
import { BUILTIN_MODEL_NAME, ensureBuiltinModel } from "../gpu-runner/src/models/builtin.js";
import { isSuperseded } from "../gpu-runner/src/runner/api-client.js";
import { loadRunnerConfig, parseModelSpec } from "../gpu-runner/src/runner/config.js";
import { startRunner } from "../gpu-runner/src/runner/runner.js";
import { prepareDataFolder } from "./data-folder.js";

const USAGE = `usage: tuneserve serve [--port 8787] [--host 127.0.0.1] [--data .data] [--no-runner]
  --port       port to listen on, 0 = any free one (default: PORT, else 8787)
  --host       address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for runners and clients elsewhere)
  --data       folder of the SQLite file, the blobs, secrets.json and the built-in model (default: TUNESERVE_DATA, else .data)
  --no-runner  the API alone, for runners on other machines (tuneserve runner)
See README.md.`;

/** The admin token for the start-up line: one an operator set stays out of logs (it is theirs already). */
const shownAdminToken = (token: string) => (process.env.TUNESERVE_ADMIN_TOKEN ? "(TUNESERVE_ADMIN_TOKEN)" : token);

/** Registers a base model through the admin API unless the id is taken already. */
async function ensureBaseModel(url: string, adminToken: string, id: string, source: string): Promise<void> {
  const res = await fetch(`${url}/admin/v1/models`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ id, source }),
  });
  if (res.status !== 201 && res.status !== 409) throw new Error(`registering base model ${id} from ${source} failed: ${res.status} ${await res.text()}`);
}

/** Entry of `npx tuneserve serve [--port 8787] [--host 127.0.0.1] [--data .data] [--no-runner]`. */
export async function run(argv: string[]): Promise<void> {
  if (printedHelp(argv, USAGE)) return;
  const { values } = parseFlags({
    args: argv,
    options: {
      port: { type: "string", default: process.env.PORT || "8787" },
      host: { type: "string", default: "127.0.0.1" },
      data: { type: "string", default: process.env.TUNESERVE_DATA || ".data" },
      // The API alone, for runners on other machines (`tuneserve runner`).
      "no-runner": { type: "boolean", default: false },
    },
  }, USAGE);
  const port = Number(values.port);
  if (values.port.trim() === "" || !Number.isInteger(port) || port < 0 || port > 65535) {
    const fromFlag = argv.some((a) => a === "--port" || a.startsWith("--port="));
    throw new UsageError(`${fromFlag ? "--port" : "PORT"} ${values.port}: must be an integer 0–65535`);
  }
  if (!values.data) throw new UsageError("--data is empty; give a folder (default .data)");
  const dataDir = resolve(values.data);
  // The folder is made once the port is held: a start refused there leaves no new folder behind.
  const api = await startServer({ port, host: values.host, dataDir, prepareData: () => prepareDataFolder(dataDir) });
  if (values["no-runner"]) {
    console.log(JSON.stringify({ msg: "tuneserve listening (API only)", url: api.url, data: dataDir, admin_token: shownAdminToken(api.adminToken) }));
    const stopApi = () => void api.close().then(() => process.exit(0));
    process.once("SIGINT", stopApi);
    process.once("SIGTERM", stopApi);
    return;
  }

  // A runner that cannot start (bad settings, its name taken by another live process on this data folder) takes
  // the API down with it: a half-started server would only confuse. Superseded later, the whole server exits.
  const runner = await startEmbeddedRunner(api, dataDir).catch(async (err: unknown) => {
    await api.close();
    // The API keeps its runners in the data folder's database: the embedded name taken there means another serve.
    if (isSuperseded(err) && !process.env.TUNESERVE_RUNNER_NAME) {
      throw new Error(`another tuneserve serve is running on the data folder ${dataDir} (its runner 'embedded' is live); stop it first, or give this one another --data`);
    }
    throw err;
  });
  console.log(JSON.stringify({ msg: "tuneserve listening", url: api.url, data: dataDir, admin_token: shownAdminToken(api.adminToken), runner_id: runner.id, models: runner.models }));

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void (async () => {
      await runner.stop().catch((err: Error) => console.error(`runner stop: ${err.message}`));
      await api.close();
      process.exit(0);
    })();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

/** Whether a TUNESERVE_RUNNER_MODELS list names the built-in model at its own folder (README: "the built-in one included if you want it"). */
function namesBuiltinModel(models: string, builtinDir: string): boolean {
  return models.split(",").some((text) => {
    if (!text.trim()) return false;
    try {
      const m = parseModelSpec(text);
      // resolve(): the folder as written may end in a slash or hold '..', and still be the built-in one's.
      return m.id === BUILTIN_MODEL_NAME && m.dir !== null && resolve(m.dir) === builtinDir;
    } catch {
      return false; // loadRunnerConfig names the bad entry
    }
  });
}

/** The embedded runner: the built-in model unless TUNESERVE_RUNNER_MODELS names others, caches under the data folder. */
async function startEmbeddedRunner(api: Awaited<ReturnType<typeof startServer>>, dataDir: string) {
  // With no TUNESERVE_RUNNER_MODELS the embedded runner trains the built-in model, created on first start; a list
  // that names it at <data>/models/tuneserve-micro gets it created and registered the same way (only there: the
  // writer replaces a folder that is not the built-in model's, so a folder of the operator's is never touched).
  const builtinDir = join(dataDir, "models", BUILTIN_MODEL_NAME);
  let models = process.env.TUNESERVE_RUNNER_MODELS;
  if (!models || namesBuiltinModel(models, builtinDir)) {
    const dir = await ensureBuiltinModel(builtinDir);
    await ensureBaseModel(api.url, api.adminToken, BUILTIN_MODEL_NAME, dir);
    models ||= `${BUILTIN_MODEL_NAME}=${dir}`;
  }
  const config = loadRunnerConfig([], {
    TUNESERVE_RUNNER_NAME: "embedded",
    TUNESERVE_RUNNER_CACHE_DIR: join(dataDir, "runner"),
    ...process.env,
    TUNESERVE_API_URL: api.url,
    TUNESERVE_RUNNER_TOKEN: api.runnerToken,
    TUNESERVE_RUNNER_MODELS: models,
  }, hostname());
  const runner = await startRunner(config, { onSuperseded: () => void api.close().then(() => process.exit(1)) });
  return Object.assign(runner, { models: config.models.map((m) => m.id) });
}
