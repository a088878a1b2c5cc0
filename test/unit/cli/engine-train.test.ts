// `engine train` flag parsing: flags map onto the TrainJobSpec, absent ones stay absent (the loop owns
// the defaults), bad values name the flag, and folder flags are checked before any training; what training
// says of the data names the --data path and --seq-len, as the user gave them.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { UsageError } from "../../../gpu-runner/src/cli/args.js";
import { run, specFromArgs } from "../../../gpu-runner/src/cli/engine-train.js";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { fixturesDir } from "../../helpers/fixtures.js";

describe("engine train flags", () => {
  it("maps every flag onto the spec", () => {
    const spec = specFromArgs([
      "--model", "m", "--data", "d.jsonl", "--out", "o", "--validation", "v.jsonl", "--method", "lora", "--rank", "4", "--alpha", "8", "--dropout", "0.1",
      "--targets", "q_proj, v_proj", "--epochs", "2", "--lr", "1e-3", "--batch-size", "3", "--seq-len", "64", "--seed", "5", "--resume", "ck",
      "--schedule", "linear", "--warmup-ratio", "0.1", "--max-grad-norm", "none", "--grad-accum", "2", "--checkpoint-every", "10", "--packing", "--rslora",
      "--beta", "0.25", "--init-adapter", "sft",
    ]);
    expect(spec).toEqual({
      modelDir: "m", dataPath: "d.jsonl", outDir: "o", validationPath: "v.jsonl", resumeFrom: "ck", method: "lora", rank: 4, alpha: 8, dropout: 0.1,
      targets: ["q_proj", "v_proj"], useRslora: true, epochs: 2, lr: 1e-3, batchSize: 3, gradAccum: 2, seqLen: 64, seed: 5, schedule: "linear",
      warmupRatio: 0.1, maxGradNorm: null, packing: true, checkpointEvery: 10, beta: 0.25, initAdapter: "sft",
    });
  });
  it("leaves defaults to the loop and keeps all-linear as the string", () => {
    expect(specFromArgs(["--model", "m", "--data", "d", "--out", "o", "--targets", "all-linear"])).toEqual({ modelDir: "m", dataPath: "d", outDir: "o", method: "lora", targets: "all-linear" });
  });
  it("names the bad flag", () => {
    const base = ["--model", "m", "--data", "d", "--out", "o"];
    expect(() => specFromArgs(base.slice(2))).toThrow(/--model is required/);
    expect(() => specFromArgs([...base, "--rank", "0"])).toThrow(/--rank=0 must be an integer ≥ 1/);
    expect(() => specFromArgs([...base, "--epochs", "1.5"])).toThrow(/--epochs=1.5/);
    expect(() => specFromArgs([...base, "--method", "ia3"])).toThrow(/--method=ia3 is not supported/);
    expect(() => specFromArgs([...base, "--schedule", "step"])).toThrow(/--schedule=step/);
  });
  it("refuses, as a mistake in the call naming the flag, every value the training spec refuses", () => {
    // These passed the flag parsing and failed later as `train spec: lr: …` with exit status 1.
    const base = ["--model", "m", "--data", "d", "--out", "o"];
    const refused: [string, string, RegExp][] = [
      ["--lr", "0", /^--lr=0 must be a number > 0$/],
      ["--lr", "-1", /^--lr=-1 must be a number > 0$/],
      ["--alpha", "0", /^--alpha=0 must be a number > 0$/],
      ["--beta", "0", /^--beta=0 must be a number > 0 and ≤ 100$/],
      ["--beta", "101", /^--beta=101 must be a number > 0 and ≤ 100$/],
      ["--max-grad-norm", "0", /^--max-grad-norm=0 must be a number > 0$/],
      ["--warmup-ratio", "2", /^--warmup-ratio=2 must be a number ≥ 0 and ≤ 1$/],
      ["--dropout", "1", /^--dropout=1 must be a number ≥ 0 and < 1$/],
      ["--targets", "foo,q_proj", /^--targets: target_modules \["foo"\] are not projections of this model; use "all-linear" or any of q_proj, /],
      ["--targets", ",", /^--targets=, names no projection; use "all-linear" or a comma-separated list such as q_proj,v_proj$/],
    ];
    for (const [flag, value, said] of refused) {
      expect(() => specFromArgs([...base, flag, value]), `${flag} ${value}`).toThrow(UsageError);
      expect(() => specFromArgs([...base, flag, value]), `${flag} ${value}`).toThrow(said);
    }
  });
});

describe("engine train folders", () => {
  it("names an --out that is a file, and a --resume or --init-adapter folder that is not one, before training", async () => {
    const dir = mkdtempSync(join(tmpdir(), "train-flags-"));
    const file = join(dir, "file");
    writeFileSync(file, "");
    const base = ["--model", `${fixturesDir}/micro-llama/base`, "--data", file];
    await expect(run([...base, "--out", file])).rejects.toThrow(/^--out .*file: not a folder$/);
    await expect(run([...base, "--out", join(dir, "out"), "--resume", join(dir, "none")])).rejects.toThrow(/^--resume .*none: no such folder$/);
    await expect(run([...base, "--out", join(dir, "out"), "--init-adapter", dir])).rejects.toThrow(/^--init-adapter .*: the folder has no adapter_config\.json$/);
  });
  it("names a --data or --validation file that is not there, or is a folder, as a mistake in the call", async () => {
    const dir = mkdtempSync(join(tmpdir(), "train-files-"));
    const base = ["--model", `${fixturesDir}/micro-llama/base`, "--out", join(dir, "out")];
    await expect(run([...base, "--data", join(dir, "none.jsonl")])).rejects.toThrow(new UsageError(`--data ${join(dir, "none.jsonl")}: no such file`));
    await expect(run([...base, "--data", dir])).rejects.toThrow(new UsageError(`--data ${dir}: is a folder; give the JSONL file`));
    writeFileSync(join(dir, "train.jsonl"), "");
    await expect(run([...base, "--data", join(dir, "train.jsonl"), "--validation", join(dir, "v.jsonl")])).rejects.toThrow(new UsageError(`--validation ${join(dir, "v.jsonl")}: no such file`));
  });
});

describe("engine train messages", () => {
  it("names the --data file by its path and the sequence length by its flag", async () => {
    const dir = mkdtempSync(join(tmpdir(), "train-messages-"));
    const model = await ensureBuiltinModel(join(dir, "model"));
    const data = join(dir, "mine.jsonl");
    // Each prompt alone fills more than 16 tokens: every example is cut, and none has a token left to learn.
    writeFileSync(data, ["alpha", "bravo"].map((w) => JSON.stringify({ prompt: `Please repeat the following word back to me exactly once: ${w} ->`, completion: ` ${w}` })).join("\n") + "\n");
    const printed = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      await expect(run(["--model", model, "--data", data, "--out", join(dir, "out"), "--seq-len", "16"])).rejects.toThrow(
        `${data}: no example has a token to train on once cut to --seq-len=16 tokens; check the file, or raise --seq-len`,
      );
      expect(printed.mock.calls.map(([line]) => JSON.parse(line))).toContainEqual({ type: "log", level: "warn", message: `${data}: 2 example(s) longer than --seq-len=16 were truncated` });
    } finally {
      printed.mockRestore();
    }
    writeFileSync(data, JSON.stringify({ prompt: "a:", completion: " b" }) + "\n" + JSON.stringify({ prompt: "c:" }) + "\n");
    await expect(run(["--model", model, "--data", data, "--out", join(dir, "out")])).rejects.toThrow(`${data}:2: `);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
