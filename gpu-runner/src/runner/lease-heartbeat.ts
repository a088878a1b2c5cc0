// A training attempt's heartbeats: they keep its lease and carry its progress, one at a time, a call made
// while one is out sending the newest progress once it is answered.
export interface HeartbeatHooks {
  /** Sends one heartbeat with the newest progress. */
  send(): Promise<void>;
  /** Nothing is sent once the lease is lost or the attempt is over. */
  stopped(): boolean;
  /** The attempt is over: a late heartbeat's error (a 409 after complete) means nothing any more. */
  over(): boolean;
  /** A heartbeat failed: the lease was lost, or the API could not be reached (the next tick tries again). */
  failed(err: unknown): void;
}

export class LeaseHeartbeat {
  /** When the last heartbeat went out (Date.now()). */
  lastSent = 0;
  private sending = false;
  private again = false;
  private run: Promise<void> = Promise.resolve();

  constructor(private readonly hooks: HeartbeatHooks) {}

  /**
   * Sends the newest progress, one heartbeat at a time (later calls coalesce); resolves once it (and any
   * coalesced newer one) has been answered.
   */
  beat(): Promise<void> {
    const { hooks } = this;
    if (hooks.stopped()) return Promise.resolve();
    if (this.sending) {
      // Coalesce: one more heartbeat with the newest progress once this one is answered.
      this.again = true;
      return this.run;
    }
    this.sending = true;
    this.run = (async () => {
      try {
        do {
          this.again = false;
          this.lastSent = Date.now();
          try {
            await hooks.send();
          } catch (err) {
            if (hooks.over()) break;
            hooks.failed(err);
          }
        } while (this.again && !hooks.stopped());
      } finally {
        this.sending = false;
      }
    })();
    return this.run;
  }
}
