// What a benchmark number depends on besides our code: threads, CPUs, host load, other processes'
// CPU use during a phase (the machine is shared), and the process's peak memory (Linux /proc).
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Environment summary printed with every benchmark result. */
export function benchEnv(threads: number): Record<string, unknown> {
  return {
    node: process.version,
    threads,
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? null,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** Resets the peak-RSS watermark (VmHWM) to the current RSS; false where /proc does not allow it. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** Peak resident memory since the last reset, MiB (VmHWM; falls back to the process-wide maximum). */
export function peakRssMb(): number {
  try {
    const m = readFileSync("/proc/self/status", "utf8").match(/^VmHWM:\s+(\d+) kB/m);
    if (m) return Math.round((Number(m[1]) / 1024) * 10) / 10;
  } catch {
    // not Linux: fall through
  }
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}

function busyTicks(): number | null {
  try {
    const v = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    return v.reduce((a, b) => a + b, 0) - v[3] - v[4]; // minus idle and iowait
  } catch {
    return null;
  }
}

/**
 * Measures a phase's wall time, our CPU time and the CPU time other processes used meanwhile, like the
 * peer's CpuWatch: a foreign_share above ~0.1 means the numbers were disturbed by other work.
 */
export async function watchCpu<T>(fn: () => Promise<T>): Promise<{ value: T; cpu: Record<string, number> }> {
  const hz = 100; // USER_HZ is 100 on Linux x86-64
  const b0 = busyTicks();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const own = (c.user + c.system) / 1e6;
  const b1 = busyTicks();
  const cpu: Record<string, number> = { wall_s: round(wall, 2), own_cpu_s: round(own, 2) };
  if (b0 !== null && b1 !== null) {
    const foreign = Math.max(0, (b1 - b0) / hz - own);
    cpu.foreign_cpu_s = round(foreign, 2);
    cpu.foreign_share = round(foreign / Math.max(1e-9, wall * os.cpus().length), 3);
  }
  return { value, cpu };
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

let gc: (() => void) | undefined;

/**
 * Runs a full garbage collection, then lets the finalizers it queued run, so that a timed phase does not pay
 * for collecting what setup left (a model load leaves tens of MB of graph and weight buffers). Node exposes
 * gc() only behind a flag, which can still be set at run time.
 */
export async function collectGarbage(): Promise<void> {
  if (!gc) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  gc();
  await new Promise((done) => setImmediate(done));
}
