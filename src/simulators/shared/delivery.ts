/**
 * Notification delivery as payment providers do it: POST to the merchant's notify URL, and when the answer is not
 * an acknowledgement (or none comes in time), try again on the provider's retry schedule.
 *
 * Each attempt is built afresh by the caller (new timestamp, nonce and signature), so a retry looks like the
 * provider's. Timers are `unref()`ed so a pending retry never keeps a process alive, and `close()` cancels
 * every pending retry and aborts requests in flight.
 */

export interface SimulatorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: SimulatorLogger = { info() {}, warn() {}, error() {} };

export interface DeliveryRequest {
  headers: Record<string, string>;
  body: string;
}

/** One POST to a notify URL, as recorded for tests and people. */
export interface DeliveryAttempt {
  /** The provider's notification id (the same on every retry). */
  notificationId: string;
  /** What was notified, e.g. `TRANSACTION.SUCCESS`. */
  label: string;
  url: string;
  /** 1 for the first delivery, 2 for the first retry, … */
  attempt: number;
  at: Date;
  /** HTTP status of the answer; absent when there was none (connection error, timeout). */
  status?: number;
  error?: string;
  acknowledged: boolean;
}

export interface DispatchInput {
  notificationId: string;
  label: string;
  url: string;
  /** Builds attempt number `attempt` (1-based): sign it now. */
  build(attempt: number): DeliveryRequest;
  /** Whether the merchant's answer acknowledges the notification. Default: any 2xx. */
  acknowledged?(status: number, body: string): boolean;
}

export interface DispatcherOptions {
  /** Delays before each retry, in milliseconds, at real speed (e.g. WeChat Pay's 15 s, 15 s, 30 s, …). */
  retryScheduleMs: readonly number[];
  /** Retries run this many times faster. Default 1. */
  timeScale?: number;
  /** How long the provider waits for the merchant's answer. Default 5000 ms (not scaled). */
  replyTimeoutMs?: number;
  logger?: SimulatorLogger;
  /** The attempt log keeps at most this many entries (oldest dropped). Default 10000. */
  maxLog?: number;
}

export class NotificationDispatcher {
  /** Every attempt so far, oldest first. */
  readonly attempts: DeliveryAttempt[] = [];

  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<AbortController>();
  private readonly timeScale: number;
  private readonly replyTimeoutMs: number;
  private readonly logger: SimulatorLogger;
  private readonly maxLog: number;
  private closed = false;

  constructor(private readonly options: DispatcherOptions) {
    this.timeScale = options.timeScale ?? 1;
    if (!(this.timeScale > 0)) throw new RangeError('timeScale must be a positive number');
    this.replyTimeoutMs = options.replyTimeoutMs ?? 5000;
    this.logger = options.logger ?? silentLogger;
    this.maxLog = options.maxLog ?? 10_000;
  }

  /** Starts delivering now; resolves nothing (delivery runs in the background until acknowledged or given up). */
  dispatch(input: DispatchInput): void {
    if (this.closed) return;
    this.schedule(input, 1, 0);
  }

  /** Deliveries still waiting for a retry or an answer. */
  get pending(): number {
    return this.timers.size + this.inFlight.size;
  }

  /** Cancels every pending retry and aborts requests in flight. Idempotent. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.inFlight) c.abort();
    this.inFlight.clear();
  }

  private schedule(input: DispatchInput, attempt: number, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt(input, attempt);
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
  }

  private async attempt(input: DispatchInput, attempt: number): Promise<void> {
    if (this.closed) return;
    const record: DeliveryAttempt = {
      notificationId: input.notificationId,
      label: input.label,
      url: input.url,
      attempt,
      at: new Date(),
      acknowledged: false,
    };
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), this.replyTimeoutMs);
    timeout.unref();
    this.inFlight.add(controller);
    try {
      const req = input.build(attempt);
      const res = await fetch(input.url, { method: 'POST', headers: req.headers, body: req.body, signal: controller.signal });
      const text = await res.text();
      record.status = res.status;
      record.acknowledged = input.acknowledged ? input.acknowledged(res.status, text) : res.status >= 200 && res.status < 300;
      if (!record.acknowledged) record.error = text.slice(0, 200);
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
    } finally {
      clearTimeout(timeout);
      this.inFlight.delete(controller);
    }
    if (this.closed) return;
    this.log(record);

    if (record.acknowledged) return;
    const delay = this.options.retryScheduleMs[attempt - 1];
    if (delay === undefined) {
      this.logger.warn({ notificationId: input.notificationId, url: input.url, attempts: attempt }, 'notification given up');
      return;
    }
    this.schedule(input, attempt + 1, delay / this.timeScale);
  }

  private log(record: DeliveryAttempt): void {
    this.attempts.push(record);
    if (this.attempts.length > this.maxLog) this.attempts.splice(0, this.attempts.length - this.maxLog);
    const { notificationId, label, url, attempt, status, error } = record;
    if (record.acknowledged) this.logger.info({ notificationId, label, url, attempt, status }, 'notification delivered');
    else this.logger.warn({ notificationId, label, url, attempt, status, error }, 'notification not acknowledged');
  }
}
