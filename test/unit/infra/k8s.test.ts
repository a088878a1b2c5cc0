// infra/k8s against the code: every YAML parses; the runner Deployment's env (with the image's) is a runner config the
// runner accepts; ports, probe, Service, Secrets and KEDA's metric point at what exists. (No cluster is run here.)
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer } from "../../../api/src/node.js";
import { loadRunnerConfig, runnerEnvNames } from "../../../gpu-runner/src/runner/config.js";
import { startInferenceServer } from "../../../gpu-runner/src/serve/server.js";
import { type Doc, dockerStages, infraYaml, manifests } from "./read-infra.js";

const image = dockerStages("infra/Dockerfile.runner").at(-1)!;
const deployment = manifests("Deployment").find((d) => d.metadata.name === "tuneserve-runner");
const pod = deployment.spec.template;
const container = pod.spec.containers[0];

/** The Secret `name`'s `key` from secrets.example.yaml; throws when the example does not define it. */
function secretValue(name: string, key: string): string {
  const secret = manifests("Secret").find((s) => s.metadata.name === name);
  const value = secret?.stringData?.[key] ?? secret?.data?.[key];
  if (value === undefined) throw new Error(`Secret ${name} has no key ${key} in infra/k8s/secrets.example.yaml`);
  return value;
}

/** A container's env as Kubernetes resolves it: literal values with $(VAR) of earlier entries, Secrets, pod fields. */
function containerEnv(c: Doc, fields: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, v) => env[v] ?? all);
    else if (e.valueFrom?.secretKeyRef) env[e.name] = secretValue(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
    else if (e.valueFrom?.fieldRef) {
      const value = fields[e.valueFrom.fieldRef.fieldPath];
      if (value === undefined) throw new Error(`${e.name}: unexpected fieldRef ${e.valueFrom.fieldRef.fieldPath}`);
      env[e.name] = value;
    } else throw new Error(`${e.name}: no value`);
  }
  return env;
}

const env = { ...image.env, ...containerEnv(container, { "metadata.name": "tuneserve-runner-7d9c-x2x", "status.podIP": "10.1.2.3" }) };

describe("infra/k8s", () => {
  it("parses every YAML file under infra/ into Kubernetes objects", () => {
    const files = infraYaml();
    expect(files.map((f) => f.file)).toContain("infra/k8s/runner-deployment.yaml");
    for (const f of files) for (const d of f.docs) expect(d, f.file).toMatchObject({ apiVersion: expect.any(String), kind: expect.any(String), metadata: { name: expect.any(String) } });
  });

  it("gives the runner only variables it reads, which with the image's make a config it accepts", () => {
    const unknown = Object.keys(env).filter((n) => n.startsWith("TUNESERVE_") && !runnerEnvNames.includes(n));
    expect(unknown).toEqual([]);
    // Every other variable is there to build a TUNESERVE_ one.
    for (const n of Object.keys(env).filter((n) => !n.startsWith("TUNESERVE_") && !(n in image.env))) {
      expect(container.env.some((e: Doc) => String(e.value ?? "").includes(`$(${n})`)), `${n} is set but unused`).toBe(true);
    }
    const config = loadRunnerConfig([], env, "unused");
    expect(config.name).toBe("tuneserve-runner-7d9c-x2x");
    expect(config.publicUrl).toBe("http://10.1.2.3:8788");
    // --capacity is the inference batch of each served model (docs/runner.md), not a count of training jobs: a GPU
    // pod that decodes one sequence at a time would queue every other request behind it.
    expect(config.capacity).toBeGreaterThan(1);
    // The pod gets time to checkpoint and hand its job back (docs/runner.md) before Kubernetes kills it.
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(config.shutdownCheckpointSeconds);
  });

  it("announces, exposes and probes the port the runner listens on, and the Service targets it", () => {
    const config = loadRunnerConfig([], env, "unused");
    const port = Number(config.listen.split(":")[1]);
    const http = container.ports.find((p: Doc) => p.name === "http");
    expect(http.containerPort).toBe(port);
    expect(new URL(config.publicUrl!).port).toBe(String(port));
    expect(container.readinessProbe.httpGet.port).toBe("http");
    const service = manifests("Service").find((s) => s.metadata.name === "tuneserve-runner");
    expect(service.spec.selector).toEqual(pod.metadata.labels);
    expect(deployment.spec.selector.matchLabels).toEqual(pod.metadata.labels);
    expect(container.ports.map((p: Doc) => p.name)).toContain(service.spec.ports[0].targetPort);
  });

  it("probes a path the runner's server answers", async () => {
    const dir = await mkdtemp(join(tmpdir(), "k8s-probe-"));
    const server = await startInferenceServer({ apiUrl: "http://127.0.0.1:9", runnerToken: "run_0123456789abcdef", listen: "127.0.0.1:0", models: {}, cacheDir: dir });
    try {
      expect((await fetch(`${server.url}${container.readinessProbe.httpGet.path}`)).status).toBe(200);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe("KEDA autoscaling", () => {
    const scaled = manifests("ScaledObject")[0];
    const trigger = scaled.spec.triggers[0];
    let api: Awaited<ReturnType<typeof startServer>>;
    let dir: string;
    const auth = manifests("TriggerAuthentication").find((a) => a.metadata.name === trigger.authenticationRef.name);
    const tokenRef = auth?.spec.secretTargetRef.find((r: Doc) => r.parameter === "token");
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "k8s-keda-"));
      api = await startServer({ port: 0, dataDir: dir, env: { TUNESERVE_ADMIN_TOKEN: secretValue(tokenRef.name, tokenRef.key) } });
    });
    afterAll(async () => {
      await api.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("scales the runner Deployment with the admin token from a Secret", () => {
      expect(scaled.spec.scaleTargetRef.name).toBe(deployment.metadata.name);
      expect(trigger.type).toBe("metrics-api");
      // KEDA's bearer mode reads the TriggerAuthentication parameter "token".
      expect(trigger.metadata.authMode).toBe("bearer");
      expect(tokenRef).toBeDefined();
    });

    it("targets the jobs needing a runner, as many per runner as the Deployment says it trains at once", () => {
      // jobs.queued alone drops to 0 while jobs train, and the fleet would be scaled down under them
      // (test/integration/api/admin-metrics-autoscaling.test.ts pins what needing_runner counts).
      expect(trigger.metadata.valueLocation).toBe("jobs.needing_runner");
      // Set in the Deployment, beside the trigger that depends on it, rather than left to the runner's default.
      expect(container.env.map((e: Doc) => e.name)).toContain("TUNESERVE_RUNNER_TRAINING_JOBS");
      expect(Number(trigger.metadata.targetValue)).toBe(loadRunnerConfig([], env, "unused").trainingJobs);
    });

    it("reads a number at valueLocation from the API's metrics answer", async () => {
      const res = await fetch(`${api.url}${new URL(trigger.metadata.url).pathname}`, { headers: { authorization: `Bearer ${secretValue(tokenRef.name, tokenRef.key)}` } });
      expect(res.status).toBe(200);
      const value = String(trigger.metadata.valueLocation).split(".").reduce((v: Doc, k) => v?.[k], await res.json());
      expect(typeof value).toBe("number");
    });
  });
});
