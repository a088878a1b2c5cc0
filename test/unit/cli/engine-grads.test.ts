// `engine grads` end to end on the micro-qwen2 fixture: the JSON it writes against reference.json.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../../gpu-runner/src/cli/engine-grads.js";

const dir = join(import.meta.dirname, "../../../../shared/fixtures/micro-qwen2");
const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
const tmp = mkdtempSync(join(tmpdir(), "grads-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("engine grads", () => {
  it("writes the loss and per-tensor gradient norms and sums under PEFT keys", async () => {
    const out = join(tmp, "g.json");
    const tokens = (ref.input_ids as number[][]).map((r) => r.join(",")).join(";");
    await run(["--model", join(dir, "base"), "--adapter", join(dir, "adapter"), "--tokens", tokens, "--out", out]);
    const got = JSON.parse(readFileSync(out, "utf8"));
    expect(Math.abs(got.loss - ref.loss)).toBeLessThan(1e-5);
    expect(Object.keys(got.grad_norms).sort()).toEqual(Object.keys(ref.lora_grad_norms).sort());
    const maxNorm = Math.max(...(Object.values(ref.lora_grad_norms) as number[]));
    for (const [k, want] of Object.entries(ref.lora_grad_norms as Record<string, number>)) {
      expect(Math.abs(got.grad_norms[k] - want) / want, k).toBeLessThan(1e-3);
      expect(Math.abs(got.grad_sums[k] - ref.lora_grad_sums[k]), k).toBeLessThan(1e-3 * maxNorm);
    }
  });
  it("names a token outside the vocabulary", async () => {
    await expect(run(["--model", join(dir, "base"), "--adapter", join(dir, "adapter"), "--tokens", "1,999", "--out", join(tmp, "x.json")])).rejects.toThrow(/--tokens: 999 is outside the vocabulary 0\.\.255/);
  });
});
