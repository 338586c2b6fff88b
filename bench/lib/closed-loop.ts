/**
 * Maximum throughput with autocannon (closed loop: `connections` keep-alive connections, each sending its next
 * request when the previous answer arrived). Every request is built by `next()` (unique idempotency keys, one
 * notification each), answers are checked by `verify`, and the rate is computed with this process's clock over the
 * requests that were answered as expected (autocannon's own duration is rounded to its 1 s tick).
 */

interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

interface AutocannonResult {
  requests: { total: number; average: number };
  latency: { p50: number; p99: number; average: number; p97_5: number; p90: number; max: number };
  errors: number;
  timeouts: number;
  mismatches: number;
  non2xx: number;
  '2xx': number;
  '4xx': number;
  '5xx': number;
  duration: number;
}

type AutocannonFn = (
  opts: Record<string, unknown>,
  cb?: (err: Error | null, result: AutocannonResult) => void,
) => { on(event: string, fn: (...args: any[]) => void): void; stop(): void };

// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as AutocannonFn;

export interface ClosedLoopOptions {
  url: string;
  connections: number;
  /** Run for this long (ms)… */
  durationMs?: number;
  /** …or send exactly this many requests. */
  amount?: number;
  /** The next request; `expect`, when given, tells whether its answer is the one it should get. */
  next(): AutocannonRequest & { expect?: (status: number, body: string) => boolean };
  /** Status codes counted as expected (autocannon counts others as non2xx). */
  verifyBody?: (body: string) => boolean;
  timeoutSec?: number;
}

export interface ClosedLoopResult {
  /** Requests answered per second, own clock. */
  rate: number;
  /** Of which as expected (2xx and verifyBody). */
  goodRate: number;
  total: number;
  good: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  non2xx: number;
  status4xx: number;
  /** Answers their request's `expect` refused (exact: each answer is matched with its request). */
  unexpectedStatus: number;
  elapsedMs: number;
  /** autocannon's (closed-loop) latency percentiles, ms. */
  latency: { p50: number; p99: number; mean: number };
}

export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const started = performance.now();
  let last = started;
  let unexpectedStatus = 0;
  type Context = { expect?: (status: number, body: string) => boolean };
  const result = await new Promise<AutocannonResult>((resolve, reject) => {
    const instance = autocannon(
      {
        url: o.url,
        connections: o.connections,
        ...(o.amount ? { amount: o.amount } : { duration: Math.max(1, Math.round((o.durationMs ?? 10_000) / 1000)) }),
        timeout: o.timeoutSec ?? 15,
        ...(o.verifyBody ? { verifyBody: o.verifyBody } : {}),
        // One request in flight per connection (no pipelining): the connection's context holds what its answer
        // should be.
        requests: [
          {
            setupRequest: (req: AutocannonRequest, context: Context) => {
              const { expect, ...next } = o.next();
              context.expect = expect;
              return { ...req, ...next };
            },
            onResponse: (status: number, body: string, context: Context) => {
              if (context.expect && !context.expect(status, body)) unexpectedStatus++;
            },
          },
        ],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', () => (last = performance.now()));
  });
  const elapsed = Math.max(1, last - started);
  const total = result.requests.total;
  const good = result['2xx'] - (result.mismatches ?? 0);
  return {
    rate: (total * 1000) / elapsed,
    goodRate: (good * 1000) / elapsed,
    total,
    good,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches ?? 0,
    non2xx: result.non2xx,
    status4xx: result['4xx'],
    unexpectedStatus,
    elapsedMs: elapsed,
    latency: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.average },
  };
}
