// Asks a runner's /healthz whether it is alive, and which process answers (its instance id, a random id each
// runner process makes at start; older runners send none).

export type RunnerHealth = { instance: string | null };

/**
 * The runner's answer, or null when it gives none that is OK within `timeoutMs`. The runner needs no token for
 * /healthz; it is sent for a proxy in front of runners that wants it, as for /v1/generate.
 */
export async function probeRunner(url: string, timeoutMs: number, runnerToken: string, fetchImpl: typeof fetch = fetch): Promise<RunnerHealth | null> {
  try {
    const res = await fetchImpl(new URL("/healthz", url), { headers: { Authorization: `Bearer ${runnerToken}` }, signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json().catch(() => null)) as { instance?: unknown } | null;
    if (!res.ok) return null;
    return { instance: typeof body?.instance === "string" ? body.instance : null };
  } catch {
    return null;
  }
}
