// The list of route modules; each exports a register…(app) function (one route family per file).
import type { Router } from "../app.js";
import { registerBlobRoute } from "../blob/route.js";
import { adminAuth, runnerAuth, tenantAuth } from "../middleware/auth.js";
import { registerAdminMetrics } from "./admin_metrics.js";
import { registerAdminModels } from "./admin_models.js";
import { registerAdminRunners } from "./admin_runners.js";
import { registerAdminTenants } from "./admin_tenants.js";
import { registerAdminUsage } from "./admin_usage.js";
import { registerApiKeys } from "./v1_api_keys.js";
import { registerFiles } from "./v1_files.js";
import { registerAdapters } from "./v1_adapters.js";
import { registerModels } from "./v1_models.js";
import { registerFineTuningJobs } from "./v1_fine_tuning_jobs.js";
import { registerFineTuningEvents } from "./v1_fine_tuning_events.js";
import { registerUsage } from "./v1_usage.js";
import { registerInternalRunners } from "./internal_runners.js";
import { registerInternalJobs } from "./internal_jobs.js";
import { registerInternalJobOutputs } from "./internal_job_outputs.js";
import { registerInternalAdapters } from "./internal_adapters.js";
import { registerInternalModels } from "./internal_models.js";
import { registerChatCompletions } from "./v1_chat_completions.js";
import { registerCompletions } from "./v1_completions.js";

export function registerRoutes(app: Router): void {
  app.use("/admin/*", adminAuth());
  app.use("/v1/*", tenantAuth());
  app.use("/internal/*", runnerAuth());
  registerBlobRoute(app);
  registerAdminTenants(app);
  registerAdminModels(app);
  registerAdminMetrics(app);
  registerAdminUsage(app);
  registerAdminRunners(app);
  registerApiKeys(app);
  registerFiles(app);
  registerModels(app);
  registerAdapters(app);
  registerFineTuningJobs(app);
  registerFineTuningEvents(app);
  registerUsage(app);
  registerChatCompletions(app);
  registerCompletions(app);
  registerInternalRunners(app);
  registerInternalJobs(app);
  registerInternalJobOutputs(app);
  registerInternalAdapters(app);
  registerInternalModels(app);
}
