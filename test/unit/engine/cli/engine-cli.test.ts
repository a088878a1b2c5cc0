// `tuneserve engine logits|generate` against the fixture: in-process for the numbers, one spawned run
// through bin/tuneserve.mjs for the wiring.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { getPreset } from "../../../../bench/presets.js";
import { writeRandomModel } from "../../../../bench/random-model.js";
import { run } from "../../../../gpu-runner/src/cli/engine.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { loadTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { writeByteLevelTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/byte-level.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const FX = `${fixturesDir}/micro-qwen2`;
const ref = JSON.parse(readFileSync(`${FX}/reference.json`, "utf8"));

describe("engine CLI", () => {
  afterEach(() => vi.restoreAllMocks());

  it("logits writes [batch][position][vocab] matching the reference, rows of different lengths unpadded", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "cli-")), "logits.json");
    const tokens = `${ref.input_ids[0].slice(0, 3).join(",")};${ref.input_ids[1].slice(0, 2).join(",")}`;
    await run(["logits", "--model", `${FX}/base`, "--adapter", `${FX}/adapter`, "--tokens", tokens, "--out", out]);
    const { logits } = JSON.parse(readFileSync(out, "utf8")) as { logits: number[][][] };
    expect(logits.map((r) => r.length)).toEqual([3, 2]);
    expect(logits[0][0]).toHaveLength(256);
    let m = 0;
    for (let b = 0; b < 2; b++) for (let p = 0; p < 2; p++) ref.logits_first2[b][p].forEach((v: number, i: number) => (m = Math.max(m, Math.abs(logits[b][p][i] - v))));
    expect(m).toBeLessThan(1e-4);
  });

  it("generate prints greedy tokens (no text without a tokenizer)", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await run(["generate", "--model", `${FX}/base`, "--adapter", `${FX}/adapter`, "--tokens", ref.greedy_prompt.join(","), "--max-tokens", "12", "--temperature", "0", "--ignore-eos"]);
    expect(JSON.parse(log.mock.calls[0][0] as string)).toEqual({ tokens: ref.greedy_tokens });
  });

  it("generate decodes greedily through the decode loop (merged adapter too) and samples without building it", async () => {
    const L = `${fixturesDir}/micro-llama`;
    const refL = JSON.parse(readFileSync(`${L}/reference.json`, "utf8"));
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const load = vi.spyOn(LoadedModel, "load");
    const gen = (...extra: string[]) => run(["generate", "--model", `${L}/base`, "--adapter", `${L}/adapter`, "--tokens", refL.greedy_prompt.join(","), "--max-tokens", "12", "--ignore-eos", ...extra]);
    await gen("--merge");
    await gen("--temperature", "0.7", "--seed", "3");
    expect(load.mock.calls.map((c) => c[1]?.decodeLoop)).toEqual([true, false]);
    expect(JSON.parse(log.mock.calls[0][0] as string)).toEqual({ tokens: refL.greedy_tokens });
    expect(JSON.parse(log.mock.calls[1][0] as string).tokens).toHaveLength(12);
  });

  /** A random model of the micro preset with the byte-level tokenizer and its ChatML template. */
  async function modelWithTokenizer() {
    const dir = mkdtempSync(join(tmpdir(), "cli-tok-"));
    await writeRandomModel(dir, { ...getPreset("micro"), vocab: 264 }, { seed: 7 });
    await writeByteLevelTokenizer(dir);
    return { dir, tok: (await loadTokenizer(dir))! };
  }

  /** Runs `engine generate` on `dir` and returns what it printed. */
  async function generated(dir: string, ...args: string[]): Promise<{ tokens: number[]; text: string }> {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      await run(["generate", "--model", dir, "--ignore-eos", ...args]);
      return JSON.parse(log.mock.calls[0][0] as string);
    } finally {
      log.mockRestore();
    }
  }

  it("generate --prompt encodes with the folder's tokenizer, prints text, and cuts at --stop", async () => {
    const { dir, tok } = await modelWithTokenizer();
    const gen = (...extra: string[]) => generated(dir, "--prompt", "hello", "--max-tokens", "10", ...extra);
    const full = await gen();
    expect(full.tokens).toHaveLength(10);
    expect(full.text).toBe(tok.decode(full.tokens));
    const stop = full.text.slice(2, 4);
    const cut = await gen("--stop", stop);
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    // Sampling with a seed is reproducible through the CLI.
    expect((await gen("--temperature", "1", "--seed", "3")).tokens).toEqual((await gen("--temperature", "1", "--seed", "3")).tokens);
  });

  it("generate --chat puts the prompt through the chat template as the user's turn, after --system's", async () => {
    const { dir, tok } = await modelWithTokenizer();
    const gen = (...args: string[]) => generated(dir, "--max-tokens", "6", ...args);
    const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "hello" }];
    const templated = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
    expect(templated).toContain("<|im_start|>assistant\n");
    expect(await gen("--chat", "--system", "Be brief.", "--prompt", "hello")).toEqual(await gen("--prompt", templated));
    await expect(run(["generate", "--model", dir, "--chat", "--tokens", "1", "--max-tokens", "2"])).rejects.toThrow(/--chat needs --prompt/);
    await expect(run(["generate", "--model", dir, "--system", "x", "--prompt", "hi", "--max-tokens", "2"])).rejects.toThrow(/--system goes with --chat/);
  });

  it("rejects bad flags with the flag's name", async () => {
    await expect(run(["logits", "--model", `${FX}/base`, "--tokens", "1,x", "--out", "/tmp/x.json"])).rejects.toThrow(/--tokens: "x"/);
    await expect(run(["generate", "--model", `${FX}/base`, "--tokens", "1", "--max-tokens", "0"])).rejects.toThrow(/--max-tokens=0/);
    await expect(run(["generate", "--model", `${FX}/base`, "--prompt", "hi", "--max-tokens", "2"])).rejects.toThrow(/--prompt needs .*tokenizer.json/);
    await expect(run(["generate", "--model", `${FX}/base`, "--max-tokens", "2"])).rejects.toThrow(/exactly one of --prompt or --tokens/);
  });

  it("runs through npx tuneserve's launcher", () => {
    const D = `${fixturesDir}/micro-llama`;
    const refL = JSON.parse(readFileSync(`${D}/reference.json`, "utf8"));
    const stdout = execFileSync(process.execPath, ["bin/tuneserve.mjs", "engine", "generate", "--model", `${D}/base`, "--tokens", refL.greedy_prompt.join(","), "--max-tokens", "12"], {
      encoding: "utf8",
    });
    expect(JSON.parse(stdout.trim())).toEqual({ tokens: refL.greedy_tokens_base });
  });
});
