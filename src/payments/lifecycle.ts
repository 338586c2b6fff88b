import type { Logger } from '../shared/logger';
import type { Orm } from '../shared/db/orm';
import { Order } from '../orders/order.entity';
import type { OrdersService } from '../orders/orders.service';
import { OrderStatus } from '../orders/status-machine';
import { Payment } from './payment.entity';
import { PaymentStatus, RefundStatus } from './payment-status';
import type { PaymentsService } from './payments.service';
import { Refund } from './refund.entity';

/** How often each instance looks for due work. The queries hit small indexed ranges, so a second is cheap. */
export const LIFECYCLE_TICK_MS = 1000;
/** How long a claim on a row lasts; a crashed instance's claims run out after this. */
const LEASE_MS = 60_000;
const SYSTEM = { id: 'system', role: 'admin' as const };

/**
 * The background side of payments, safe with many instances on PostgreSQL (and on SQLite): every row is claimed with
 * a conditional update before it is worked on, so no two instances handle the same order, payment or refund at once.
 *
 * - Timeouts: an order unpaid at `expiresAt` has its live payments closed at the provider first, then is CANCELLED
 *   (actor `system`, stock released, event published). If the provider says a payment succeeded, the order is PAID.
 * - Query fallback: a PENDING payment with no result is queried at PAYMENT_QUERY_DELAYS after its creation (then every
 *   last-delay seconds) until it expires; a success found this way takes the callbacks' path.
 * - Refund follow-up: a PENDING refund is queried (or re-sent with the same refundNo) until it ends.
 */
export class PaymentLifecycle {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly orm: Orm,
    private readonly payments: PaymentsService,
    private readonly orders: OrdersService,
    private readonly queryDelays: number[],
    private readonly log: Logger,
  ) {}

  start(tickMs = LIFECYCLE_TICK_MS): void {
    this.timer = setInterval(() => void this.tick(), tickMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a tick in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass over all due work (skipped if the previous pass is still running). */
  tick(): Promise<void> {
    this.running ??= (async () => {
      try {
        await this.sweepExpiredOrders();
        await this.queryDuePayments();
        await this.followUpRefunds();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'payment lifecycle pass failed; retrying next tick');
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  async sweepExpiredOrders(now = new Date(), limit = 50): Promise<{ cancelled: number; paid: number }> {
    const em = this.orm.em.fork();
    const due = await em.find(
      Order,
      {
        status: { $in: [OrderStatus.PENDING_PAYMENT, OrderStatus.PAYING] },
        expiresAt: { $lte: now },
        $or: [{ sweepLeaseUntil: null }, { sweepLeaseUntil: { $lt: now } }],
      },
      { orderBy: { expiresAt: 'asc' }, limit, fields: ['id'] },
    );
    const result = { cancelled: 0, paid: 0 };
    for (const { id } of due) {
      const claimed = await em
        .createQueryBuilder(Order)
        .update({ sweepLeaseUntil: new Date(now.getTime() + LEASE_MS) })
        .where({ id, $or: [{ sweepLeaseUntil: null }, { sweepLeaseUntil: { $lt: now } }] })
        .execute('run');
      if (!claimed.affectedRows) continue;
      try {
        if ((await this.payments.closeLivePayments(id, 'system')) === 'paid') {
          result.paid++;
          continue;
        }
        await this.orders.change(SYSTEM, id, async (tx, order, emit) => {
          if (order.status === OrderStatus.PENDING_PAYMENT || order.status === OrderStatus.PAYING) {
            await this.orders.expire(tx, order, emit);
            result.cancelled++;
          }
        });
      } catch (err) {
        this.log.warn({ orderId: id, err: (err as Error).message }, 'could not expire an order yet; retried when its claim runs out');
      }
    }
    return result;
  }

  async queryDuePayments(now = new Date(), limit = 50): Promise<number> {
    const em = this.orm.em.fork();
    const due = await em.find(
      Payment,
      { status: PaymentStatus.PENDING, nextQueryAt: { $lte: now } },
      { orderBy: { nextQueryAt: 'asc' }, limit },
    );
    let queried = 0;
    for (const p of due) {
      const claimed = await em
        .createQueryBuilder(Payment)
        .update({ nextQueryAt: this.nextQueryAt(p, now), attempts: p.attempts + 1 })
        .where({ id: p.id, status: PaymentStatus.PENDING, nextQueryAt: p.nextQueryAt })
        .execute('run');
      if (!claimed.affectedRows) continue;
      queried++;
      await this.payments.syncPayment(p.id).catch((err) => {
        this.log.warn({ paymentNo: p.paymentNo, err: (err as Error).message }, 'payment query failed; asking again later');
      });
    }
    return queried;
  }

  /** The schedule: creation + delays[k] for the k-th query, then every last delay; none past the payment's expiry. */
  private nextQueryAt(p: Payment, now: Date): Date | null {
    const k = p.attempts + 1;
    const last = this.queryDelays[this.queryDelays.length - 1]!;
    const at =
      k < this.queryDelays.length
        ? new Date(p.createdAt.getTime() + this.queryDelays[k]! * 1000)
        : new Date(now.getTime() + last * 1000);
    const next = at > now ? at : new Date(now.getTime() + last * 1000);
    if (p.expiresAt && next > p.expiresAt) return p.expiresAt > now ? p.expiresAt : null;
    return next;
  }

  async followUpRefunds(now = new Date(), limit = 50): Promise<number> {
    const em = this.orm.em.fork();
    const due = await em.find(
      Refund,
      { status: RefundStatus.PENDING, nextQueryAt: { $lte: now } },
      { orderBy: { nextQueryAt: 'asc' }, limit, fields: ['id', 'nextQueryAt'] },
    );
    let checked = 0;
    for (const r of due) {
      const claimed = await em
        .createQueryBuilder(Refund)
        .update({ nextQueryAt: new Date(now.getTime() + LEASE_MS) })
        .where({ id: r.id, status: RefundStatus.PENDING, nextQueryAt: r.nextQueryAt })
        .execute('run');
      if (!claimed.affectedRows) continue;
      checked++;
      await this.payments.checkRefund(r.id).catch((err) => {
        this.log.warn({ refundId: r.id, err: (err as Error).message }, 'refund follow-up failed; retried later');
      });
    }
    return checked;
  }
}
