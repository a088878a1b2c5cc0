// Asks a runner's /healthz whether it is alive, and which process answers (its instance id, a random id each
// runner process makes at start; older runners send none).

export type RunnerHealth = { instance: string | null };

/** The runner's answer, or null when it gives none that is OK within `timeoutMs`. */
export async function probeRunner(url: string, timeoutMs: number, fetchImpl: typeof fetch = fetch): Promise<RunnerHealth | null> {
  try {
    const res = await fetchImpl(new URL("/healthz", url), { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json().catch(() => null)) as { instance?: unknown } | null;
    if (!res.ok) return null;
    return { instance: typeof body?.instance === "string" ? body.instance : null };
  } catch {
    return null;
  }
}
