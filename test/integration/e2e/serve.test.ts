// The embedded default end to end over HTTP: `tuneserve serve` creates the built-in model, a tenant's job on
// it trains in the embedded runner and succeeds, and a second tenant cannot see any of it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient, facts, factsJsonl, spawnCli, type Proc } from "./harness.js";

let dataDir: string;
let serve: Proc;
let api: ReturnType<typeof apiClient>;
let admin: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "tuneserve-e2e-serve-"));
  serve = spawnCli(["serve", "--port", "0", "--data", dataDir], { TUNESERVE_RUNNER_CHECKPOINT_EVERY: "40", TUNESERVE_RUNNER_POLL_SECONDS: "0.3", TUNESERVE_RUNNER_POLL_MAX_SECONDS: "1" });
  const ready = await serve.waitLine((l) => l.msg === "tuneserve listening", 90_000);
  api = apiClient(ready.url as string);
  admin = ready.admin_token as string;
});

afterAll(async () => {
  const code = await serve?.stop("SIGTERM");
  expect(code).toBe(0);
  await rm(dataDir, { recursive: true, force: true });
});

/** A job on the built-in model that learns a small file by heart: batch 1, a high learning rate. */
const jobOn = (fileId: string, suffix: string, n_epochs: number) => ({
  model: "tuneserve-micro",
  training_file: fileId,
  suffix,
  seed: 1,
  method: { type: "supervised", supervised: { hyperparameters: { n_epochs, batch_size: 1, learning_rate_multiplier: 10 } } },
  adapter: { r: 8, alpha: 16 },
});

describe("tuneserve serve (embedded default)", () => {
  let a: { id: string; key: string };
  let job: any;

  it("trains a job on the built-in model to success, with progress, checkpoints, the model and usage", async () => {
    a = await api.tenant(admin, "acme");
    const fileId = await api.upload(a.key, factsJsonl(2));
    job = await api.createJob(a.key, jobOn(fileId, "facts", 20));
    expect(job.status).toBe("queued");
    const done = await api.finished(a.key, job.id);
    expect(done.error).toBeNull();
    expect(done.status).toBe("succeeded");
    expect(done.trained_tokens).toBeGreaterThan(0);
    expect(done.fine_tuned_model).toMatch(new RegExp(`^ft:tuneserve-micro:${a.id}:facts:`));
    // 6 examples, batch 1, 20 epochs = 120 steps; checkpoints every 40 steps (the last one at the end).
    expect(done.progress.total_steps).toBe(120);

    const events = await api.events(a.key, job.id);
    const metrics = events.filter((e) => e.type === "metrics").map((e) => e.data.step);
    // The runner reports the first trained step at once, then at most every second, and the last one.
    expect(metrics.length).toBeGreaterThanOrEqual(2);
    expect(Math.min(...metrics)).toBeLessThan(120);
    expect(Math.max(...metrics)).toBe(120);
    expect(events.some((e) => /fetched the inputs/.test(e.message))).toBe(true);
    const ckpts = await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/checkpoints`, a.key);
    expect(ckpts.json.data.map((c: { step_number: number }) => c.step_number).sort((x: number, y: number) => x - y)).toEqual([40, 80, 120]);

    const models = await api.call("GET", "/v1/models", a.key);
    expect(models.json.data.map((m: { id: string }) => m.id)).toContain(done.fine_tuned_model);
    expect(await api.trainingUsage(a.key)).toBe(done.trained_tokens);
    // The results file: the reported steps' losses, ending at the last step.
    expect(done.result_files).toHaveLength(1);
    const csv = (await api.call("GET", `/v1/files/${done.result_files[0]}/content`, a.key)).json.text as string;
    const rows = csv.trim().split("\n");
    expect(rows[0]).toBe("step,train_loss,valid_loss,valid_mean_token_accuracy,valid_reward_accuracy");
    expect(rows.at(-1)).toMatch(/^120,\d/);
    job = done;
  });

  it("answers chats with the adapter with the learned answers, and the base model does not", async () => {
    for (const [question, answer] of facts) {
      const r = await api.call("POST", "/v1/chat/completions", a.key, { model: job.fine_tuned_model, messages: [{ role: "user", content: question }], temperature: 0, max_tokens: 16 });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      expect(r.json.choices[0].message.content).toBe(answer);
      expect(r.json.usage.completion_tokens).toBeGreaterThan(0);
    }
    const base = await api.call("POST", "/v1/chat/completions", a.key, { model: "tuneserve-micro", messages: [{ role: "user", content: facts[0][0] }], temperature: 0, max_tokens: 16 });
    expect(base.status).toBe(200);
    expect(base.json.choices[0].message.content).not.toBe(facts[0][1]);
  });

  it("serves the job's checkpoints by name: the last one answers as the final model", async () => {
    const ckpts = (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/checkpoints`, a.key)).json.data as { step_number: number; fine_tuned_model_checkpoint: string }[];
    const byStep = new Map(ckpts.map((c) => [c.step_number, c.fine_tuned_model_checkpoint]));
    const ask = (model: string, question: string) => api.call("POST", "/v1/chat/completions", a.key, { model, messages: [{ role: "user", content: question }], temperature: 0, max_tokens: 16 });
    for (const [question, answer] of facts) {
      const last = await ask(byStep.get(120)!, question);
      expect(last.status, JSON.stringify(last.json)).toBe(200);
      expect(last.json.choices[0].message.content).toBe(answer);
      expect(last.json.model).toBe(byStep.get(120));
    }
    // An early checkpoint is a model of its own (its answers are whatever 40 steps taught).
    expect((await ask(byStep.get(40)!, facts[0][0])).status).toBe(200);
  });

  it("learns to call a tool from tool-call examples, and the tuned model calls it with tool_choice auto", async () => {
    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
    const call = { id: "c1", type: "function", function: { name: "get_weather", arguments: '{"city": "Oslo"}' } };
    const examples = [
      { messages: [{ role: "user", content: "Weather in Oslo?" }, { role: "assistant", content: null, tool_calls: [call] }], tools },
      { messages: [{ role: "user", content: "Say hi." }, { role: "assistant", content: "hi" }], tools },
    ];
    const fileId = await api.upload(a.key, Array.from({ length: 3 }, () => examples.map((e) => JSON.stringify(e))).flat().join("\n") + "\n");
    const done = await api.finished(a.key, (await api.createJob(a.key, jobOn(fileId, "tools", 40))).id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    const ask = (content: string) => api.call("POST", "/v1/chat/completions", a.key, { model: done.fine_tuned_model, messages: [{ role: "user", content }], tools, temperature: 0, max_tokens: 128 });
    const weather = await ask("Weather in Oslo?");
    expect(weather.status, JSON.stringify(weather.json)).toBe(200);
    expect(weather.json.choices[0].finish_reason, JSON.stringify(weather.json.choices[0])).toBe("tool_calls");
    expect(weather.json.choices[0].message).toMatchObject({ content: null, tool_calls: [{ type: "function", function: { name: "get_weather", arguments: '{"city": "Oslo"}' } }] });
    // Streamed: the call comes whole once the text ends, and the assembled call is the same.
    const res = await api.call("POST", "/v1/chat/completions", a.key, { model: done.fine_tuned_model, messages: [{ role: "user", content: "Weather in Oslo?" }], tools, temperature: 0, max_tokens: 128, stream: true });
    const chunks = (res.json.text as string).split("\n\n").filter((b) => b.startsWith("data: {")).map((b) => JSON.parse(b.slice(6)));
    const deltas = chunks.flatMap((c) => c.choices.map((ch: { delta: unknown }) => ch.delta));
    expect(deltas.flatMap((d) => d.tool_calls ?? []).map((c: { function: unknown }) => c.function)).toEqual([{ name: "get_weather", arguments: '{"city": "Oslo"}' }]);
    expect(deltas.map((d) => d.content ?? "").join("")).toBe("");
    expect(chunks.at(-1).choices[0].finish_reason).toBe("tool_calls");
    // tool_choice "none": the adapter would call, but may not open its <tool_call> block.
    const none = await api.call("POST", "/v1/chat/completions", a.key, { model: done.fine_tuned_model, messages: [{ role: "user", content: "Weather in Oslo?" }], tools, tool_choice: "none", temperature: 0, max_tokens: 40 });
    expect(none.status).toBe(200);
    expect(none.json.choices[0].message.tool_calls).toBeUndefined();
    expect(none.json.choices[0].message.content).not.toContain("<tool_call");
    const hi = await ask("Say hi.");
    expect(hi.json.choices[0]).toMatchObject({ finish_reason: "stop", message: { content: "hi" } });
  });

  it("holds the tuned model's calls to the tools' parameters under tool_choice auto", async () => {
    // Taught to call with a city the tool's enum leaves out: the grammar lets only the enum's cities through.
    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { enum: ["Paris", "Berlin"] } }, required: ["city"], additionalProperties: false } } }];
    const call = { id: "c1", type: "function", function: { name: "get_weather", arguments: '{"city": "Oslo"}' } };
    const example = { messages: [{ role: "user", content: "Weather in Oslo?" }, { role: "assistant", content: null, tool_calls: [call] }], tools };
    const fileId = await api.upload(a.key, `${JSON.stringify(example)}\n`.repeat(4));
    const done = await api.finished(a.key, (await api.createJob(a.key, jobOn(fileId, "enum-tools", 40))).id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    const held = await api.call("POST", "/v1/chat/completions", a.key, { model: done.fine_tuned_model, messages: [{ role: "user", content: "Weather in Oslo?" }], tools, parallel_tool_calls: false, temperature: 0, max_tokens: 128 });
    expect(held.json.choices[0].finish_reason, JSON.stringify(held.json.choices[0])).toBe("tool_calls");
    const [only, ...more] = held.json.choices[0].message.tool_calls;
    expect(more).toEqual([]);
    expect(["Paris", "Berlin"]).toContain(JSON.parse(only.function.arguments).city);
  });

  it("trains a DPO job on preference pairs: the adapter favours the preferred answers over the base model", async () => {
    const d = await api.tenant(admin, "prefs");
    const pairs: [string, string, string][] = [["Is fire hot?", "yes", "no"], ["Is ice hot?", "no", "yes"], ["Sky colour?", "blue", "green"], ["Grass colour?", "green", "blue"]];
    const line = ([q, yes, no]: [string, string, string]) => JSON.stringify({ input: { messages: [{ role: "user", content: q }] }, preferred_output: [{ role: "assistant", content: yes }], non_preferred_output: [{ role: "assistant", content: no }] });
    const fileId = await api.upload(d.key, pairs.map(line).join("\n") + "\n");
    const created = await api.createJob(d.key, {
      model: "tuneserve-micro", training_file: fileId, validation_file: fileId, suffix: "prefs", seed: 1,
      method: { type: "dpo", dpo: { hyperparameters: { n_epochs: 20, batch_size: 1, learning_rate_multiplier: 10, beta: 0.1 } } },
    });
    expect(created.method.dpo.hyperparameters).toMatchObject({ beta: 0.1, learning_rate: 2e-3 });
    const done = await api.finished(d.key, created.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    const events = await api.events(d.key, done.id);
    const validations = events.filter((e) => /validation DPO loss/.test(e.message)).sort((x, y) => x.data.step - y.data.step);
    expect(validations).toHaveLength(20); // one per epoch
    expect(validations.at(-1)!.data.valid_reward_accuracy).toBe(1);
    expect(await api.trainingUsage(d.key)).toBe(done.trained_tokens);
    // The first byte of each answer, the only two tokens let through (a +100 bias each): how much more
    // likely the preferred one is, with the adapter and with the base model alone.
    const gap = async (model: string, [q, yes, no]: [string, string, string]) => {
      const [y, n] = [yes.charCodeAt(0), no.charCodeAt(0)];
      const r = await api.call("POST", "/v1/chat/completions", d.key, { model, messages: [{ role: "user", content: q }], max_tokens: 1, logprobs: true, top_logprobs: 2, logit_bias: { [y]: 100, [n]: 100 } });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      const top: { bytes: number[]; logprob: number }[] = r.json.choices[0].logprobs.content[0].top_logprobs;
      const lp = (b: number) => top.find((t) => t.bytes[0] === b)!.logprob;
      return lp(y) - lp(n);
    };
    for (const p of pairs) expect(await gap(done.fine_tuned_model, p)).toBeGreaterThan((await gap("tuneserve-micro", p)) + 5);
  });

  it("continues the fine-tuned model with DPO: it starts as the reference, and the chats keep their learned answers", async () => {
    // Pairs on the facts learned above: each learned answer preferred over another fact's answer.
    const pairs = facts.map(([q, yes], i) => JSON.stringify({ input: { messages: [{ role: "user", content: q }] }, preferred_output: [{ role: "assistant", content: yes }], non_preferred_output: [{ role: "assistant", content: facts[(i + 1) % facts.length][1] }] }));
    const fileId = await api.upload(a.key, pairs.join("\n") + "\n");
    const created = await api.createJob(a.key, { model: job.fine_tuned_model, training_file: fileId, suffix: "facts-dpo", seed: 1, method: { type: "dpo", dpo: { hyperparameters: { n_epochs: 5, batch_size: 1 } } } });
    expect(created).toMatchObject({ model: job.fine_tuned_model, adapter: { r: 8, alpha: 16 } });
    const done = await api.finished(a.key, created.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    const events = await api.events(a.key, done.id);
    expect(events.some((e) => /starting from the initial adapter/.test(e.message))).toBe(true);
    expect(events.some((e) => e.message.includes(`fetched the inputs (training file`) && e.message.includes(`; continuing ${job.fine_tuned_model}`))).toBe(true);
    // The reference is the continued model, so DPO's first loss is log 2 exactly (from the base model it would not be).
    const first = events.filter((e) => e.type === "metrics").sort((x, y) => x.data.step - y.data.step)[0];
    expect(first.data).toMatchObject({ step: 1 });
    expect(first.data.train_loss).toBeCloseTo(Math.log(2), 4);
    for (const [question, answer] of facts) {
      const r = await api.call("POST", "/v1/chat/completions", a.key, { model: done.fine_tuned_model, messages: [{ role: "user", content: question }], temperature: 0, max_tokens: 16 });
      expect(r.json.choices[0].message.content).toBe(answer);
    }
  });

  it("hides tenant A's job, adapter and model from tenant B (404)", async () => {
    const b = await api.tenant(admin, "globex");
    expect((await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, b.key)).status).toBe(404);
    expect((await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/events`, b.key)).status).toBe(404);
    expect((await api.call("GET", `/v1/models/${encodeURIComponent(job.fine_tuned_model)}`, b.key)).status).toBe(404);
    const adapterId = `adp_${job.id.slice("ftjob-".length)}`;
    expect((await api.call("GET", `/v1/adapters/${adapterId}`, a.key)).status).toBe(200);
    expect((await api.call("GET", `/v1/adapters/${adapterId}`, b.key)).status).toBe(404);
    const bModels = await api.call("GET", "/v1/models", b.key);
    expect(bModels.json.data.map((m: { id: string }) => m.id)).not.toContain(job.fine_tuned_model);
    expect((await api.call("GET", "/v1/fine_tuning/jobs", b.key)).json.data).toEqual([]);
    const chat = await api.call("POST", "/v1/chat/completions", b.key, { model: job.fine_tuned_model, messages: [{ role: "user", content: "hi" }], max_tokens: 4 });
    expect(chat.status).toBe(404);
    expect(await api.trainingUsage(b.key)).toBe(0);
  });
});
