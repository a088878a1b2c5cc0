// Points a serve stack's API at a stand-in runner (a test's own HTTP server answering /v1/generate): registers
// a model on the stack's model folder and a runner at `url` that serves only it; and a stand-in that gives a canned answer.
import { expect } from "vitest";
import type { ServeStack } from "../../bench/stack.js";
import { listenLocal, type LocalServer } from "./http-server.js";

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

/**
 * A stand-in runner that answers every /v1/generate with the same text in `pieces` and says it is in `toolCallFormat`
 * (and, with `callIds`, tool_call_ids): whole, or streamed one delta per piece (the first with the prompt's tokens and
 * the format), as a real runner would.
 */
export function listenCannedRunner(pieces: string[], toolCallFormat: string, usage: { prompt_tokens: number; completion_tokens: number }, callIds?: boolean): Promise<LocalServer> {
  return listenLocal((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const asked = JSON.parse(body);
      const said = { response_format: asked.response_format, tool_call_format: toolCallFormat, ...(callIds !== undefined ? { tool_call_ids: callIds } : {}) };
      if (!asked.stream) {
        res.writeHead(200, { "Content-Type": "application/json" });
        return void res.end(JSON.stringify({ text: pieces.join(""), tokens: pieces.map((_, i) => i), finish_reason: "stop", usage, ...said }));
      }
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      const deltas = pieces.map((piece, i) => ({ type: "delta", text: piece, token: i, ...(i === 0 ? { prompt_tokens: usage.prompt_tokens, ...said } : {}) }));
      res.end([...deltas, { type: "done", finish_reason: "stop", usage }].map((e) => `data: ${JSON.stringify(e)}\n\n`).join(""));
    });
  });
}
