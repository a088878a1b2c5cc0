// Watches one call to a runner. When the runner has sent nothing for a while (a long answer is computed before
// its headers go out, and a stream can pause), the watch asks the runner's /healthz; a runner that does not
// answer that either (frozen, SIGSTOPped, its host gone quiet while the connection stays open) is given up
// on and the call aborted. The caller then hears within seconds, not after the HTTP client's five minutes,
// and a call with nothing sent yet goes to the next runner.
import { probeRunner } from "./runner-health.js";

export type WatchTimes = {
  /** Silence before the runner is asked whether it is alive. */
  quietMs: number;
  /** How long its /healthz may take to answer. */
  probeTimeoutMs: number;
};

export const RUNNER_WATCH: WatchTimes = { quietMs: 10_000, probeTimeoutMs: 5_000 };

/** The reason an abandoned call fails with. */
export class RunnerSilent extends Error {
  constructor(runnerId: string) {
    super(`runner ${runnerId} stopped answering (its health check failed too)`);
    this.name = "RunnerSilent";
  }
}

export class RunnerWatch {
  private readonly controller = new AbortController();
  private readonly timer: ReturnType<typeof setInterval>;
  /** Sending the request is not hearing from the runner: the first check after `quietMs` may already probe. */
  private heard = false;
  private probing = false;
  private stopped = false;

  /** Aborts the call when the runner is given up on. */
  readonly signal = this.controller.signal;

  constructor(
    private readonly runner: { id: string; url: string },
    private readonly runnerToken: string,
    private readonly times: WatchTimes,
    private readonly fetchImpl: typeof fetch,
  ) {
    this.timer = setInterval(() => void this.check(), times.quietMs);
  }

  /** The runner sent something: it is alive. */
  heardFrom(): void {
    this.heard = true;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  /** `response` with a body that counts each chunk as heard and ends the watch when it ends or is cancelled. */
  follow(response: Response): Response {
    if (!response.body) {
      this.stop();
      return response;
    }
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const { done, value } = await reader.read();
          this.heardFrom();
          if (done) {
            this.stop();
            controller.close();
          } else controller.enqueue(value);
        } catch (err) {
          this.stop();
          controller.error(err);
        }
      },
      cancel: (reason) => {
        this.stop();
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }

  private async check(): Promise<void> {
    if (this.heard || this.probing) {
      this.heard = false;
      return;
    }
    this.probing = true;
    const alive = await probeRunner(this.runner.url, this.times.probeTimeoutMs, this.runnerToken, this.fetchImpl);
    this.probing = false;
    if (alive || this.stopped) return;
    this.stop();
    this.controller.abort(new RunnerSilent(this.runner.id));
  }
}
