// Runs the PyTorch peer benchmark (../shared/peers/torch_lora_bench.py) and returns its one JSON line,
// or the reason it could not run (no python3/torch), so our benchmark still reports its own numbers.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const PEER_PYTHON = "/usr/bin/python3";
/** The peer script, found relative to this file: <repo>/../shared/peers/torch_lora_bench.py. */
export const PEER_SCRIPT = fileURLToPath(new URL("../../shared/peers/torch_lora_bench.py", import.meta.url));
/** OpenBLAS's OpenMP build; without it torch falls back to the reference BLAS (~20× slower, see peers/README.md). */
const OPENBLAS_OPENMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp";

export type PeerOutcome = { ok: true; result: Record<string, unknown> } | { ok: false; reason: string };

type Run = { code: number | null; stdout: string; stderr: string };

/** Runs a process to completion; `onStderrLine` gets each complete stderr line as it arrives. */
function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, onStderrLine?: (line: string) => void): Promise<Run> {
  return new Promise((resolveRun) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let partial = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) onStderrLine?.(line);
    });
    child.on("error", (err) => resolveRun({ code: -1, stdout, stderr: stderr + String(err) }));
    child.on("close", (code) => {
      if (partial) onStderrLine?.(partial);
      resolveRun({ code, stdout, stderr });
    });
  });
}

function peerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (existsSync(OPENBLAS_OPENMP)) env.LD_LIBRARY_PATH = [OPENBLAS_OPENMP, env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  return env;
}

/** Says why the peer cannot run here, or null when python3 with torch and the script are present. */
export async function peerUnavailableReason(): Promise<string | null> {
  if (!existsSync(PEER_PYTHON)) return `${PEER_PYTHON} not found`;
  if (!existsSync(PEER_SCRIPT)) return `peer script ${PEER_SCRIPT} not found`;
  const r = await runProcess(PEER_PYTHON, ["-c", "import torch"], peerEnv());
  if (r.code !== 0) return `torch is not importable by ${PEER_PYTHON} (apt-get install -y python3-torch): ${lastLine(r.stderr)}`;
  return null;
}

function lastLine(s: string): string {
  const lines = s.trim().split("\n");
  return lines[lines.length - 1] ?? "";
}

/**
 * Runs the peer with `--preset` plus `args` (e.g. --no-train, --prompt-len 128) and parses the JSON line it
 * prints last. Each progress line from its stderr goes to `onProgress` when given.
 */
export async function runPeer(preset: string, args: string[], onProgress?: (line: string) => void): Promise<PeerOutcome> {
  const reason = await peerUnavailableReason();
  if (reason) return { ok: false, reason };
  const r = await runProcess(PEER_PYTHON, [PEER_SCRIPT, "--preset", preset, ...args], peerEnv(), onProgress);
  if (r.code !== 0) return { ok: false, reason: `peer exited with code ${r.code}: ${lastLine(r.stderr)}` };
  const line = r.stdout.trim().split("\n").filter((l) => l.startsWith("{")).pop();
  if (!line) return { ok: false, reason: "peer printed no JSON line on stdout" };
  try {
    return { ok: true, result: JSON.parse(line) as Record<string, unknown> };
  } catch (err) {
    return { ok: false, reason: `peer output is not JSON (${(err as Error).message})` };
  }
}
