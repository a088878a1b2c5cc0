// Each tenant's share of a model's sequences on this runner (running or waiting): one tenant's burst must not
// take the whole queue and leave every other tenant with 429s. The share is the batch plus half the queue,
// rounded up (a queue of one is not held back): a lone tenant still keeps the batch full (the queue beyond it
// only buffers), and the other half of the queue stays open to the rest.

export class TenantShares {
  private readonly held = new Map<string, number>();

  constructor(readonly limit: number) {}

  /**
   * Takes `n` sequences for `tenant`; false, taking nothing, when that would pass its share. A tenant with
   * nothing in flight may always ask (one request of many choices is bounded by the runner's capacity alone).
   */
  take(tenant: string, n: number): boolean {
    const cur = this.held.get(tenant) ?? 0;
    if (cur > 0 && cur + n > this.limit) return false;
    this.held.set(tenant, cur + n);
    return true;
  }

  give(tenant: string, n: number): void {
    const left = (this.held.get(tenant) ?? 0) - n;
    if (left > 0) this.held.set(tenant, left);
    else this.held.delete(tenant);
  }

  /** Sequences `tenant` holds now. */
  of(tenant: string): number {
    return this.held.get(tenant) ?? 0;
  }
}
