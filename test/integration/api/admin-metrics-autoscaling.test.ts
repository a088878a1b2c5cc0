// GET /admin/v1/metrics as the runner autoscaler's signal (infra/k8s/runner-autoscaling.yaml): a running job keeps
// its runner busy, so the jobs that need a runner are the queued ones plus the running ones. Scaling on the queue
// alone would scale a fleet down to one runner while its jobs train, and each runner stopped hands its job back.
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../../helpers/api.js";
import { createJob, runningJob, tenantWithFile } from "../../helpers/jobs.js";

let api: TestApi;
beforeAll(async () => void (api = await startTestApi()));
afterAll(() => api.close());

it("counts the jobs needing a runner (queued + running), in JSON and Prometheus text", async () => {
  await runningJob(api);
  const t = await tenantWithFile(api, "waiting");
  await createJob(api, t.key, { training_file: t.fileId });
  const json = await (await api.call("GET", "/admin/v1/metrics", { token: api.admin })).json();
  expect(json.jobs).toEqual({ queued: 1, running: 1, needing_runner: 2, waiting_for_checkpoint_format: 0 });
  const text = await (await api.call("GET", "/admin/v1/metrics?format=prometheus", { token: api.admin })).text();
  expect(text).toContain("# TYPE tuneserve_jobs_needing_runner gauge\ntuneserve_jobs_needing_runner 2\n");
});
