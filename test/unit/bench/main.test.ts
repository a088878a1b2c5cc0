// `tuneserve bench` dispatch (errors and unknown flags) and the ours/peer ratio table.
import { afterEach, describe, expect, it, vi } from "vitest";
import { UsageError } from "../../../gpu-runner/src/cli/args.js";
import { run } from "../../../bench/main.js";
import { ratios } from "../../../bench/generate.js";

afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

function captureStderr(): string[] {
  const lines: string[] = [];
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => void lines.push(args.join(" ")));
  return lines;
}

describe("bench CLI", () => {
  it("refuses a flag a benchmark does not know as a usage error (one line, exit 2), before running anything", async () => {
    for (const args of [["serve", "--preset", "tiny"], ["generate", "--steps", "3"], ["train", "--rounds", "2"], ["json-mask", "--preset", "tiny"]]) {
      const err = await run(args).then(() => null, (e: unknown) => e);
      expect(err, args.join(" ")).toBeInstanceOf(UsageError);
      expect((err as Error).message, args.join(" ")).toMatch(new RegExp(`^Unknown option '${args[1]}'.*\\(tuneserve bench.* --help lists the flags\\)$`));
    }
  });

  it("rejects an unknown benchmark and a missing one with usage", async () => {
    const err = captureStderr();
    await run(["fly"]);
    expect(process.exitCode).toBe(2);
    expect(err.join("\n")).toMatch(/unknown benchmark "fly"[\s\S]*usage: tuneserve bench/);
    process.exitCode = undefined;
    await run([]);
    expect(process.exitCode).toBe(2);
  });

  it("prints each benchmark's usage on -h and --help without running it", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    for (const args of [["-h"], ["--help"], ["generate", "-h"], ["train", "-h"], ["serve", "-h"], ["json-mask", "--help"], ["json-mask", "-h"]]) {
      const err = captureStderr();
      await run(args);
      expect(process.exitCode ?? 0, args.join(" ")).toBe(0);
      expect([...err, ...log.mock.calls.map((c) => c.join(" "))].join("\n"), args.join(" ")).toMatch(/usage: tuneserve bench/);
      vi.mocked(console.error).mockRestore();
      log.mockClear();
    }
  });

  it("names the bad preset or flag value", async () => {
    await expect(run(["generate", "--preset", "huge"])).rejects.toThrow(/unknown preset "huge"/);
    await expect(run(["generate", "--gen-tokens", "x"])).rejects.toThrow(/--gen-tokens=x must be a whole number/);
    await expect(run(["generate", "--gen-batches", "0"])).rejects.toThrow(/--gen-batches must list batch sizes ≥ 1/);
    // Each a mistake in the call: exit 2, as for the other commands.
    for (const args of [["generate", "--preset", "huge"], ["generate", "--gen-tokens", "x"], ["train", "--steps", "0"], ["serve", "--mode", "x"], ["json-mask", "--vocab", "3"]]) {
      await expect(run(args), args.join(" ")).rejects.toBeInstanceOf(UsageError);
    }
  });
});

describe("ratios", () => {
  const ours = [
    { batch: 1, mode: "lora_unmerged" as const, prefill_tok_s: 200, decode_tok_s: 50 },
    { batch: 8, mode: "base_only" as const, prefill_tok_s: 900, decode_tok_s: 300 },
  ];
  it("divides ours by the peer's entry of the same batch and mode", () => {
    const peer = {
      generate: [
        { batch: 8, mode: "base_only", prefill_tok_s: 300, decode_tok_s: 400 },
        { batch: 1, mode: "lora_unmerged", prefill_tok_s: 100, decode_tok_s: 25 },
      ],
    };
    expect(ratios(ours, peer)).toEqual({
      lora_unmerged_b1: { decode_tok_s: 2, prefill_tok_s: 2 },
      base_only_b8: { decode_tok_s: 0.75, prefill_tok_s: 3 },
    });
  });

  it("is null without a peer and null per entry the peer lacks", () => {
    expect(ratios(ours, null)).toBeNull();
    expect(ratios(ours, { generate: [] })).toEqual({
      lora_unmerged_b1: { decode_tok_s: null, prefill_tok_s: null },
      base_only_b8: { decode_tok_s: null, prefill_tok_s: null },
    });
  });
});

describe("warnings", () => {
  it("flags disturbed phases and a peer on the reference BLAS", async () => {
    const { warnings } = await import("../../../bench/generate.js");
    const quiet = { batch: 1, mode: "base_only" as const, prefill_tok_s: 1, decode_tok_s: 1, cpu: { foreign_share: 0.02 } };
    const busy = { batch: 8, mode: "lora_unmerged" as const, prefill_tok_s: 1, decode_tok_s: 1, cpu: { foreign_share: 0.5 } };
    expect(warnings([quiet], null)).toEqual([]);
    expect(warnings([quiet, busy], null)).toEqual([expect.stringMatching(/^ours: .* during lora_unmerged_b8;/)]);
    const peer = { env: { blas_libs: ["/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"] }, generate: [quiet] };
    expect(warnings([quiet], peer)).toEqual([expect.stringMatching(/reference BLAS/)]);
    expect(warnings([quiet], { ...peer, env: { blas_libs: ["/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"] } })).toEqual([]);
  });
});
