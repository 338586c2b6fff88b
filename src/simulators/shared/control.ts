/**
 * The test-and-people controls every simulator mounts next to its protocol:
 * - `GET|POST /control`: how later refunds end (`{ refundBehaviour, refundDelayMs }`, the provider's own words for
 *   the outcomes) and, where the simulator can hold a refund in progress, `settleRefund` to end one now;
 * - `GET /notifications`: the delivery log, oldest first;
 * - `GET|POST /bill-faults`: what `shared/bill-faults.ts` puts into the bills served.
 * Refusals answer 400 (404 for a refund that cannot be settled) with `{ code, message }` in the provider's words.
 */
import type { Router } from 'express';
import { applyBillFaultsRequest, type BillFaults } from './bill-faults';
import type { NotificationDispatcher } from './delivery';
import { isObject, parseJson } from './request';

/** The scripted outcome of later refunds, and the timers of refunds that end later (cancelled by `close()`). */
export class RefundControl<B extends string> {
  behaviour: B;
  delayMs = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    /** The provider's words for the outcomes, the default first. */
    readonly behaviours: readonly [B, ...B[]],
  ) {
    this.behaviour = behaviours[0];
  }

  set(behaviour: B, delayMs = 0): void {
    this.behaviour = behaviour;
    this.delayMs = delayMs;
  }

  /** Runs `fn` `delayMs` from now, unless `close()` comes first; never keeps the process alive. */
  later(fn: () => void, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** What `GET /control` answers. */
  toJSON(): { refundBehaviour: B; refundDelayMs: number } {
    return { refundBehaviour: this.behaviour, refundDelayMs: this.delayMs };
  }
}

export interface ControlRoutesOptions<B extends string> {
  /** The provider's code for a bad parameter (`PARAM_ERROR`, `INVALID_PARAMETER`, …). */
  invalidCode: string;
  refunds: RefundControl<B>;
  /** The message for an unknown `refundBehaviour`. */
  invalidBehaviour: string;
  /** The message for a negative or non-numeric `refundDelayMs`. */
  invalidDelay: string;
  /**
   * `settleRefund: {…}` in a POST: `settle` ends the refund it names and says whether there was one to end;
   * `notFound` is the 404 answer when there was not.
   */
  settleRefund?: { settle(s: Record<string, unknown>): boolean; notFound: { code: string; message: string } };
  dispatcher: NotificationDispatcher;
  billFaults: BillFaults;
  /** Throws (its message is the answer) for a bill-faults request this provider's bills cannot carry out. */
  checkBillFaults?: (body: unknown) => void;
}

/** Mounts `/control`, `/notifications` and `/bill-faults` on a simulator's router (bodies: `express.raw`). */
export function mountControlRoutes<B extends string>(router: Router, o: ControlRoutesOptions<B>): void {
  const invalid = (message: string) => ({ code: o.invalidCode, message });

  router.get('/control', (_req, res) => {
    res.json(o.refunds.toJSON());
  });

  router.post('/control', (req, res) => {
    const body = parseJson(req.body);
    if (!isObject(body)) {
      res.status(400).json(invalid('expected a JSON object'));
      return;
    }
    if (body.refundBehaviour !== undefined) {
      if (!(o.refunds.behaviours as readonly string[]).includes(String(body.refundBehaviour))) {
        res.status(400).json(invalid(o.invalidBehaviour));
        return;
      }
      const delay = body.refundDelayMs === undefined ? 0 : Number(body.refundDelayMs);
      if (!Number.isFinite(delay) || delay < 0) {
        res.status(400).json(invalid(o.invalidDelay));
        return;
      }
      o.refunds.set(body.refundBehaviour as B, delay);
    }
    if (o.settleRefund && isObject(body.settleRefund) && !o.settleRefund.settle(body.settleRefund)) {
      res.status(404).json(o.settleRefund.notFound);
      return;
    }
    res.json(o.refunds.toJSON());
  });

  router.get('/notifications', (_req, res) => {
    res.json(o.dispatcher.attempts);
  });

  router.get('/bill-faults', (_req, res) => {
    res.json(o.billFaults.list());
  });

  router.post('/bill-faults', (req, res) => {
    try {
      const body = parseJson(req.body);
      o.checkBillFaults?.(body);
      applyBillFaultsRequest(o.billFaults, body);
    } catch (err) {
      res.status(400).json(invalid((err as Error).message));
      return;
    }
    res.json(o.billFaults.list());
  });
}
