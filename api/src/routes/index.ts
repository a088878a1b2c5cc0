// The list of route modules; each exports a register…(app) function (one route family per file).
import type { Router } from "../app.js";
import { registerBlobRoute } from "../blob/route.js";
import { adminAuth, runnerAuth, tenantAuth } from "../middleware/auth.js";
import { registerAdminModels } from "./admin_models.js";
import { registerAdminTenants } from "./admin_tenants.js";
import { registerApiKeys } from "./v1_api_keys.js";

export function registerRoutes(app: Router): void {
  app.use("/admin/*", adminAuth());
  app.use("/v1/*", tenantAuth());
  app.use("/internal/*", runnerAuth());
  registerBlobRoute(app);
  registerAdminTenants(app);
  registerAdminModels(app);
  registerApiKeys(app);
}
