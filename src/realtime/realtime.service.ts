import { isId } from '../shared/db/entity';
import type { Orm } from '../shared/db/orm';
import type { OrderStatus } from '../orders/status-machine';
import type { PaymentChannel } from '../payments/channels';
import type { PaymentStatus } from '../payments/payment-status';
import { Sql, readInt } from '../shared/db/sql';
import type { User } from '../shared/auth';
import { notFound } from '../shared/errors';
import type { Metrics } from '../shared/metrics';
import type { PubSub } from './pubsub';
import { orderTopic, statusPayload, type PaymentStatusPayload } from './topics';


/**
 * `paymentStatusChanged`: the order's current state first, then every change.
 *
 * Order of work matters: the topic subscription is made live first, then the order is read once, for the owner check
 * and as the snapshot, so a change committed in between arrives as an event (never lost). Events for an order the user
 * may not see only ever reach this queue, which is then discarded. Events carry the order's version; one older than
 * what was already sent is dropped, so a late delivery can never show the screen an earlier state.
 */
export class RealtimeService {
  constructor(
    private readonly orm: Orm,
    private readonly pubsub: PubSub,
    private readonly metrics?: Metrics,
  ) {}

  async orderStatus(user: User, orderId: string): Promise<AsyncIterableIterator<PaymentStatusPayload>> {
    if (!isId(orderId)) throw notFound('Order');
    const queue = new EventQueue<PaymentStatusPayload>();
    const unsubscribe = await this.pubsub.subscribe(orderTopic(orderId), (p) => queue.push(p as PaymentStatusPayload));
    try {
      const row = await Sql.on(this.orm.em).one<SnapshotRow>(SNAPSHOT, [orderId]);
      if (!row || (user.role !== 'admin' && row.customer_id !== user.id)) throw notFound('Order');
      queue.unshift(snapshotPayload(row));
    } catch (err) {
      unsubscribe();
      throw err;
    }
    this.metrics?.subscriptions.inc();
    queue.onClose(() => {
      unsubscribe();
      this.metrics?.subscriptions.dec();
    });
    return queue;
  }
}

/** The order with its latest payment, in one hand-written read (shared/db/sql.ts): every subscribe runs it. */
const SNAPSHOT = `select o.id, o.order_no, o.status, o.customer_id, o.total_amount, o.paid_amount, o.refunded_amount, o.version,
    p.id as payment_id, p.payment_no, p.status as payment_status, p.channel
  from orders o left join payments p on p.id = (select id from payments where order_id = o.id order by id desc limit 1)
  where o.id = ?`;

interface SnapshotRow {
  id: string;
  order_no: string;
  status: OrderStatus;
  customer_id: string;
  total_amount: number;
  paid_amount: number;
  refunded_amount: number;
  version: number;
  payment_id: string | null;
  payment_no: string | null;
  payment_status: PaymentStatus | null;
  channel: PaymentChannel | null;
}

function snapshotPayload(r: SnapshotRow): PaymentStatusPayload {
  const order = {
    id: r.id,
    orderNo: r.order_no,
    status: r.status,
    totalAmount: readInt(r.total_amount),
    paidAmount: readInt(r.paid_amount),
    refundedAmount: readInt(r.refunded_amount),
    version: readInt(r.version),
  };
  const payment = r.payment_id ? { id: r.payment_id, paymentNo: r.payment_no!, status: r.payment_status!, channel: r.channel! } : null;
  return statusPayload(order, payment);
}

/**
 * A push-to-pull async iterator with a version guard. Hand-written (about 40 lines) because it is the hot path of
 * every held subscription: one closure, no per-event allocations beyond the payload.
 */
class EventQueue<T extends { version: number }> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private closed = false;
  private lastVersion = -1;
  private cleanup: (() => void) | null = null;

  onClose(fn: () => void): void {
    this.cleanup = fn;
  }

  push(item: T): void {
    if (this.closed) return;
    if (this.waiting) {
      if (item.version < this.lastVersion) return;
      this.lastVersion = item.version;
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  unshift(item: T): void {
    this.items.unshift(item);
  }

  next(): Promise<IteratorResult<T>> {
    while (this.items.length) {
      const item = this.items.shift()!;
      if (item.version < this.lastVersion) continue;
      this.lastVersion = item.version;
      return Promise.resolve({ value: item, done: false });
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.closed) {
      this.closed = true;
      this.items.length = 0;
      this.cleanup?.();
      this.waiting?.({ value: undefined, done: true });
      this.waiting = null;
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(err: unknown): Promise<IteratorResult<T>> {
    void this.return();
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
