/**
 * Fixed-window limiter for mutations: `limit` per key per minute. Per instance (in memory): behind a load balancer
 * of N instances a customer can reach N × limit at worst, which is still a hard ceiling; the README says so.
 * Hand-written because express-rate-limit counts HTTP requests, and this counts GraphQL mutations per customer.
 */
export class RateLimiter {
  private windowStart = Date.now();
  private counts = new Map<string, number>();

  constructor(private readonly limit: number, private readonly windowMs = 60_000) {}

  /** Counts one hit for `key`; false when over the limit in the current window. */
  hit(key: string, now = Date.now()): boolean {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.counts = new Map();
    }
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    return n <= this.limit;
  }

  /** Seconds until the current window ends. */
  retryAfter(now = Date.now()): number {
    return Math.max(1, Math.ceil((this.windowStart + this.windowMs - now) / 1000));
  }
}
