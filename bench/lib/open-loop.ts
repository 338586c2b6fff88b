import http from 'node:http';

/**
 * An open-loop HTTP client: request i is due at t0 + i / rate whatever happened to the previous ones, and its
 * latency is measured from that intended send time (not from when a socket was free), so a server that falls behind
 * shows its queueing delay instead of slowing the client down (no coordinated omission). Keep-alive sockets from an
 * `http.Agent`; a batch (e.g. a notification and its duplicate) is sent at the same intended time.
 */

export interface OpenLoopRequest {
  method?: string;
  path: string;
  headers: Record<string, string>;
  body: string | Buffer;
  /** Whether the answer is the one expected (e.g. 204 for a genuine callback, 400 for a forged one). */
  expect?: (status: number, body: string) => boolean;
}

export interface OpenLoopOptions {
  url: string;
  /** Batches per second. */
  rate: number;
  durationMs: number;
  /** Batch i (usually one request). */
  next(i: number): OpenLoopRequest | OpenLoopRequest[];
  /** Samples whose intended time falls in the first `warmupMs` are not recorded. Default 0. */
  warmupMs?: number;
  maxSockets?: number;
  /** A request not answered this long after its intended time is counted as a timeout. Default 15 s. */
  timeoutMs?: number;
  /**
   * Saturation guard: while the oldest unanswered request is more than `maxLagMs` past its intended time (default
   * 1000 ms), or `maxInFlight` requests are unanswered (default 512, the sockets of the agent), due requests are not sent and count as
   * `dropped`: the target cannot keep up with the rate and its queue would only grow (and the phase never end).
   */
  maxLagMs?: number;
  maxInFlight?: number;
  /** Called when batch `index` is dispatched, with its intended send time (performance.now() clock). */
  onDispatch?(index: number, intendedAt: number): void;
  /**
   * Called with each finished request's latency (ms from its intended time), whether it was as expected, its batch
   * index, how it ended (`ok`, `unexpected` answer, transport `error`, `timeout`) and whether it was sent after the
   * warm-up (so recorded in `latencies` when ok).
   */
  onResult?(latencyMs: number, ok: boolean, index: number, kind: 'ok' | 'unexpected' | 'error' | 'timeout', recorded: boolean): void;
}

export interface OpenLoopResult {
  rate: number;
  /** Requests sent (batches × their size). */
  sent: number;
  ok: number;
  unexpected: number;
  errors: number;
  timeouts: number;
  /** Requests not sent because `maxInFlight` were waiting (the target could not keep up with the rate). */
  dropped: number;
  /** Batch index → how many of its requests were not sent. */
  droppedByBatch: Map<number, number>;
  /** Latencies (ms from intended send time) of the recorded (post-warmup) expected answers. */
  latencies: number[];
  /** Requests answered per second over the whole phase, measured with this process's clock. */
  achievedRate: number;
  elapsedMs: number;
  /** How late the client itself dispatched requests (p99 of send lateness, ms): large means the client lagged. */
  dispatchLagP99: number;
  sampleErrors: string[];
}

export async function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const target = new URL(o.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.maxSockets ?? 512, keepAliveMsecs: 10_000 });
  const interval = 1000 / o.rate;
  const total = Math.max(1, Math.round((o.rate * o.durationMs) / 1000));
  const warmupMs = o.warmupMs ?? 0;
  const timeoutMs = o.timeoutMs ?? 15_000;
  const latencies: number[] = [];
  const lags: number[] = [];
  const sampleErrors: string[] = [];
  let sent = 0;
  let ok = 0;
  let unexpected = 0;
  let errors = 0;
  let timeouts = 0;
  let dropped = 0;
  const droppedByBatch = new Map<number, number>();
  const maxInFlight = o.maxInFlight ?? 512;
  const maxLagMs = o.maxLagMs ?? 1000;
  // Unanswered requests in intended-time order (answers mostly come in order; finished ones are skipped lazily).
  const outstanding: Array<{ intended: number; done: boolean }> = [];
  let head = 0;
  const oldestLag = (now: number) => {
    while (head < outstanding.length && outstanding[head]!.done) head++;
    if (head > 4096) {
      outstanding.splice(0, head);
      head = 0;
    }
    return head < outstanding.length ? now - outstanding[head]!.intended : 0;
  };
  let inFlight = 0;
  let answered = 0;
  let lastAnswer = 0;

  const t0 = performance.now() + 20;
  let nextIndex = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const maybeDone = () => {
    if (nextIndex >= total && inFlight === 0) resolveDone();
  };

  const send = (req: OpenLoopRequest, intended: number, record: boolean, index: number) => {
    inFlight++;
    sent++;
    let finished = false;
    const slot = { intended, done: false };
    outstanding.push(slot);
    const finish = (kind: 'ok' | 'unexpected' | 'error' | 'timeout', detail?: string) => {
      if (finished) return;
      finished = true;
      slot.done = true;
      inFlight--;
      const now = performance.now();
      if (kind === 'ok' || kind === 'unexpected') {
        answered++;
        lastAnswer = now;
      }
      const latency = now - intended;
      if (kind === 'ok') {
        ok++;
        if (record) latencies.push(latency);
      } else if (kind === 'unexpected') unexpected++;
      else if (kind === 'error') errors++;
      else timeouts++;
      if (kind !== 'ok' && detail && sampleErrors.length < 5) sampleErrors.push(`${kind}: ${detail}`.slice(0, 300));
      o.onResult?.(latency, kind === 'ok', index, kind, record);
      maybeDone();
    };
    const body = typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
    const r = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        method: req.method ?? 'POST',
        path: req.path,
        headers: { ...req.headers, 'content-length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const good = req.expect ? req.expect(res.statusCode ?? 0, text) : (res.statusCode ?? 0) < 300;
          finish(good ? 'ok' : 'unexpected', good ? undefined : `${res.statusCode} ${text.slice(0, 200)}`);
        });
        res.on('error', (e) => finish('error', e.message));
      },
    );
    const left = Math.max(1, intended + timeoutMs - performance.now());
    r.setTimeout(left, () => {
      finish('timeout', `no answer within ${timeoutMs} ms`);
      r.destroy();
    });
    r.on('error', (e) => finish('error', e.message));
    r.end(body);
  };

  const tick = () => {
    const now = performance.now();
    while (nextIndex < total) {
      const intended = t0 + nextIndex * interval;
      if (intended > now) break;
      lags.push(now - intended);
      const batch = o.next(nextIndex);
      o.onDispatch?.(nextIndex, intended);
      const record = intended - t0 >= warmupMs;
      for (const req of Array.isArray(batch) ? batch : [batch]) {
        if (inFlight >= maxInFlight || oldestLag(now) > maxLagMs) {
          dropped++;
          droppedByBatch.set(nextIndex, (droppedByBatch.get(nextIndex) ?? 0) + 1);
        } else send(req, intended, record, nextIndex);
      }
      nextIndex++;
    }
    if (nextIndex < total) setTimeout(tick, Math.max(0, Math.min(1, t0 + nextIndex * interval - performance.now())));
    else maybeDone();
  };
  setTimeout(tick, 20);
  await done;
  agent.destroy();
  const elapsed = (lastAnswer || performance.now()) - t0;
  lags.sort((a, b) => a - b);
  return {
    rate: o.rate,
    sent,
    ok,
    unexpected,
    errors,
    timeouts,
    dropped,
    droppedByBatch,
    latencies,
    achievedRate: (answered * 1000) / Math.max(1, elapsed),
    elapsedMs: elapsed,
    dispatchLagP99: lags.length ? lags[Math.min(lags.length - 1, Math.ceil(lags.length * 0.99) - 1)]! : 0,
    sampleErrors,
  };
}
