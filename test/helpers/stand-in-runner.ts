// Points a serve stack's API at a stand-in runner (a test's own HTTP server answering /v1/generate): registers
// a model on the stack's model folder and a runner at `url` that serves only it.
import { expect } from "vitest";
import type { ServeStack } from "../../bench/stack.js";

export async function registerStandInRunner(stack: ServeStack, model: string, name: string, url: string): Promise<void> {
  const admin = await fetch(`${stack.apiUrl}/admin/v1/models`, {
    method: "POST",
    headers: { Authorization: `Bearer ${stack.adminToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ id: model, source: stack.modelDir }),
  });
  expect(admin.status).toBe(201);
  const reg = await fetch(`${stack.apiUrl}/internal/v1/runners/register`, {
    method: "POST",
    headers: { Authorization: `Bearer ${stack.runnerToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name, url, models: [model], capacity: 1 }),
  });
  expect(reg.status).toBe(200);
}
