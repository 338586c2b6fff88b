import { createHash, randomInt } from 'node:crypto';
import { OptimisticLockError, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/knex';
import type { Orm } from '../shared/db/orm';
import { StaleQuote, type CatalogService } from '../catalog/catalog.service';
import { priceOrder, type Quote, type ShippingRule } from '../catalog/pricing';
import type { Outbox, Emit } from '../realtime/outbox';
import { orderTopic, statusPayload } from '../realtime/topics';
import { actorOf, type User } from '../shared/auth';
import { DEFAULT_MERCHANT_ID, isId } from '../shared/db/entity';
import { Sql } from '../shared/db/sql';
import { DomainError, ErrorCode, badInput, notFound } from '../shared/errors';
import type { Metrics } from '../shared/metrics';
import { OrderEvent } from './order-event.entity';
import { Order, type Address } from './order.entity';
import { OrderStatus, recordCreation, transition } from './status-machine';

export interface OrderLinesInput {
  items: Array<{ sku: string; quantity: number }>;
  couponCode?: string | null;
  shippingAddress?: Address | null;
  note?: string | null;
}

export interface CreateOrderInput extends OrderLinesInput {
  idempotencyKey?: string | null;
}

/**
 * The seam where payments plug into cancellation: before an order in PAYING is cancelled, its live payments are
 * closed at the provider. `'paid'` means the provider said a payment already succeeded (the closer has then applied
 * it, so the order is PAID) and the cancel must answer ALREADY_PAID.
 */
export interface PaymentCloser {
  closeLivePayments(orderId: string, actor: string): Promise<'closed' | 'paid'>;
}

export interface OrderPage {
  orders: Order[];
  hasNextPage: boolean;
}


/** The order lifecycle up to payment and after it: pricing, creation with stock reservation, and status changes. */
export class OrdersService {
  /** Replaced by the payments module at wiring time; without payments there is nothing to close. */
  paymentCloser: PaymentCloser = { closeLivePayments: async () => 'closed' };

  constructor(
    private readonly orm: Orm,
    private readonly catalog: CatalogService,
    private readonly outbox: Outbox,
    private readonly shipping: ShippingRule,
    private readonly paymentTimeoutSeconds: number,
    private readonly metrics?: Metrics,
  ) {}

  async preview(user: User, input: OrderLinesInput): Promise<Quote> {
    return this.quote(Sql.on(this.orm.em), input, new Date(), 'read');
  }

  /**
   * Reserve stock, insert the order (its unique per-customer idempotency key fails a replay), take the coupon, append
   * the history row, all in one transaction. No event is published: nobody can be subscribed to an order that does not
   * exist yet. A replay (or a request racing its twin) fails the transaction; only then is the first order looked up,
   * so the common case costs no lookup.
   */
  async create(user: User, input: CreateOrderInput): Promise<Order> {
    const requestHash = hashOrderInput(input);
    const key = input.idempotencyKey ?? null;
    for (let attempt = 1; ; attempt++) {
      try {
        const order = await this.insertOnce(user, input, key, requestHash);
        this.metrics?.ordersCreated.inc();
        return order;
      } catch (err) {
        // The key was used before (the first order answers), or a rule failed that the first order had passed (stock
        // sold since, coupon used up): a replay still answers the first order.
        if (key) {
          const existing = await this.findByIdempotencyKey(user.id, key, requestHash);
          if (existing) return existing;
        }
        // Otherwise an orderNo collision (random part): try again with a new number.
        if (!(err instanceof UniqueConstraintViolationException) || attempt >= 3) throw err;
      }
    }
  }

  /**
   * Where queued writes travel together (PostgreSQL), the order is priced from the catalog as this process last read it
   * (`productsForQuote`: usually no read at all) and written by a transaction of nothing but writes guarded by what was
   * read: one statement. If the catalog moved since (stock taken; a price, name or availability changed), that
   * statement changes nothing, the entries are forgotten and the order is made the other way, which is the only way
   * on SQLite: reserve with UPDATE … RETURNING and price from what was reserved, OUT_OF_STOCK where the stock is short.
   */
  private async insertOnce(user: User, input: CreateOrderInput, key: string | null, requestHash: string): Promise<Order> {
    const now = new Date();
    const read = Sql.on(this.orm.em);
    if (read.batchesWrites) {
      const quoted = await this.quote(read, input, now, 'quoted');
      try {
        return await Sql.transaction(this.orm.em, async (sql) => {
          await this.catalog.reserveQuoted(sql, quoted.lines);
          return this.insert(sql, user, input, key, requestHash, quoted, now);
        });
      } catch (err) {
        if (!(err instanceof StaleQuote)) throw err;
        this.catalog.forgetQuoted(DEFAULT_MERCHANT_ID, input.items.map((l) => l.sku));
      }
    }
    return Sql.transaction(this.orm.em, async (sql) =>
      this.insert(sql, user, input, key, requestHash, await this.quote(sql, input, now, 'reserve'), now),
    );
  }

  async cancel(user: User, orderId: string, reason?: string | null): Promise<Order> {
    const order = await this.load(this.orm.em.fork(), user, orderId);
    if (order.status === OrderStatus.PAYING) {
      if ((await this.paymentCloser.closeLivePayments(order.id, actorOf(user))) === 'paid') {
        throw new DomainError(ErrorCode.ALREADY_PAID, 'The order was paid before it could be cancelled');
      }
    }
    return this.change(user, orderId, async (tx, o, emit) => {
      transition(tx, o, OrderStatus.CANCELLED, { actor: actorOf(user), reason: reason ?? 'cancelled by customer' });
      await this.releaseReservations(tx, o);
      emit(orderTopic(o.id), statusPayload(o, null));
    });
  }

  /** Used by the payment timeout sweeper once the provider side is closed. */
  async expire(tx: EntityManager, order: Order, emit: Emit): Promise<void> {
    transition(tx, order, OrderStatus.CANCELLED, { actor: 'system', reason: 'payment timeout' });
    await this.releaseReservations(tx, order);
    emit(orderTopic(order.id), statusPayload(order, null));
  }

  async ship(admin: User, orderId: string, carrier: string, trackingNo: string): Promise<Order> {
    return this.change(admin, orderId, async (tx, order, emit) => {
      transition(tx, order, OrderStatus.PROCESSING, { actor: actorOf(admin), reason: `shipped by ${carrier} ${trackingNo}` });
      order.shipment = { carrier, trackingNo, shippedAt: new Date() };
      emit(orderTopic(order.id), statusPayload(order, null));
    });
  }

  async confirmReceipt(user: User, orderId: string): Promise<Order> {
    return this.change(user, orderId, async (tx, order, emit) => {
      transition(tx, order, OrderStatus.COMPLETED, { actor: actorOf(user), reason: 'receipt confirmed' });
      emit(orderTopic(order.id), statusPayload(order, null));
    });
  }

  async review(user: User, orderId: string, rating: number, comment?: string | null): Promise<Order> {
    if (!Number.isInteger(rating) || rating < 1 || rating > 5) throw badInput('rating must be an integer from 1 to 5');
    return this.change(user, orderId, async (_tx, order) => {
      if (order.status !== OrderStatus.COMPLETED) {
        throw new DomainError(ErrorCode.INVALID_TRANSITION, 'Only a COMPLETED order can be reviewed');
      }
      if (order.review) throw new DomainError(ErrorCode.INVALID_TRANSITION, 'The order has already been reviewed');
      order.review = { rating, comment: comment ?? null, createdAt: new Date() };
      order.updatedAt = new Date();
    });
  }

  /** The order if it exists and the user may see it; null otherwise (existence does not leak). */
  async find(user: User, where: { id: string } | { orderNo: string }): Promise<Order | null> {
    if ('id' in where && !isId(where.id)) return null;
    const order = await this.orm.em.fork().findOne(Order, where);
    return order && canSee(user, order) ? order : null;
  }

  /** Newest first; customers see their own orders, admins all. `after` is the last order id of the previous page. */
  async list(user: User, first: number, after: string | null, status: OrderStatus | null): Promise<OrderPage> {
    if (first < 1 || first > 100) throw badInput('first must be between 1 and 100');
    if (after !== null && !isId(after)) throw badInput('after is not a cursor of this list');
    const where: Record<string, unknown> = {};
    if (user.role !== 'admin') where.customerId = user.id;
    if (status) where.status = status;
    if (after) where.id = { $lt: after };
    const rows = await this.orm.em.fork().find(Order, where, { orderBy: { id: 'desc' }, limit: first + 1 });
    return { orders: rows.slice(0, first), hasNextPage: rows.length > first };
  }

  async history(orderIds: readonly string[]): Promise<Map<string, OrderEvent[]>> {
    const events = await this.orm.em
      .fork()
      .find(OrderEvent, { order: { $in: [...orderIds] } }, { orderBy: { at: 'asc', id: 'asc' } });
    const byOrder = new Map<string, OrderEvent[]>(orderIds.map((id) => [id, []]));
    for (const e of events) byOrder.get(e.order.id)?.push(e);
    return byOrder;
  }

  /** Loads an order the user may change, or NOT_FOUND. */
  async load(em: EntityManager, user: User, orderId: string): Promise<Order> {
    const order = isId(orderId) ? await em.findOne(Order, { id: orderId }) : null;
    if (!order || !canSee(user, order)) throw notFound('Order');
    return order;
  }

  /**
   * Runs one change of one order in a transaction with the outbox. A concurrent change of the same order makes the
   * flush fail on the version column; the change is then retried on fresh data, where the state machine decides
   * again (typically INVALID_TRANSITION, since the other change won).
   */
  async change(
    user: User,
    orderId: string,
    apply: (tx: EntityManager, order: Order, emit: Emit) => Promise<void>,
  ): Promise<Order> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.outbox.transaction(this.orm.em.fork(), async (tx, emit) => {
          const order = await this.load(tx, user, orderId);
          await apply(tx, order, emit);
          return order;
        });
      } catch (err) {
        if (!(err instanceof OptimisticLockError) || attempt >= 5) throw err;
      }
    }
  }

  /** Products `from` the catalog as it is now (previewOrder), as last read (`productsForQuote`), or by reserving them. */
  private async quote(sql: Sql, input: OrderLinesInput, now: Date, from: 'read' | 'quoted' | 'reserve') {
    const products =
      from === 'reserve'
        ? await this.catalog.reserveLines(sql, input.items)
        : from === 'quoted'
          ? await this.catalog.productsForQuote(sql, input.items)
          : await this.catalog.productsForLines(sql, input.items);
    const coupon = input.couponCode ? await this.catalog.findCoupon(sql, input.couponCode) : null;
    return { lines: products, coupon, ...priceOrder(products, coupon, this.shipping, now) };
  }

  private async insert(
    sql: Sql,
    user: User,
    input: CreateOrderInput,
    idempotencyKey: string | null,
    requestHash: string,
    { coupon, ...quote }: Awaited<ReturnType<OrdersService['quote']>>,
    now: Date,
  ): Promise<Order> {
    const order = Object.assign(new Order(), {
      merchantId: DEFAULT_MERCHANT_ID,
      orderNo: newOrderNo(now),
      status: OrderStatus.PENDING_PAYMENT,
      customerId: user.id,
      items: quote.items,
      currency: quote.currency,
      subtotalAmount: quote.subtotalAmount,
      discountAmount: quote.discountAmount,
      shippingAmount: quote.shippingAmount,
      totalAmount: quote.totalAmount,
      paidAmount: 0,
      refundedAmount: 0,
      couponCode: quote.couponCode,
      couponId: coupon?.id ?? null,
      shippingAddress: input.shippingAddress ?? null,
      note: input.note ?? null,
      expiresAt: new Date(now.getTime() + this.paymentTimeoutSeconds * 1000),
      idempotencyKey,
      requestHash,
      createdAt: now,
      updatedAt: now,
      version: 1,
    } satisfies Partial<Order>);
    // Hand-written statements (shared/db/sql.ts).
    await sql.later(
      `insert into orders (id, merchant_id, created_at, updated_at, order_no, status, customer_id, items, currency,
         subtotal_amount, discount_amount, shipping_amount, total_amount, paid_amount, refunded_amount, coupon_code,
         coupon_id, shipping_address, note, expires_at, idempotency_key, request_hash, version)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, 1)`,
      [
        order.id, order.merchantId, now, now, order.orderNo, order.status, order.customerId, sql.json(order.items),
        order.currency, order.subtotalAmount, order.discountAmount, order.shippingAmount, order.totalAmount,
        order.couponCode, order.couponId, sql.json(order.shippingAddress), order.note, order.expiresAt, idempotencyKey,
        requestHash,
      ],
    );
    if (coupon) await this.catalog.takeCoupon(sql, coupon);
    await recordCreation(sql, order, { actor: actorOf(user), reason: 'order created' }, now);
    return order;
  }

  /** Gives back the stock and coupon use an order holds (cancelled, or refunded before shipping). */
  async releaseReservations(tx: EntityManager, order: Order): Promise<void> {
    await this.catalog.releaseStock(tx, order.items, order.merchantId);
    if (order.couponId) await this.catalog.releaseCoupon(tx, order.couponId);
  }

  private async findByIdempotencyKey(customerId: string, key: string, requestHash: string): Promise<Order | null> {
    const existing = await this.orm.em.fork().findOne(Order, { customerId, idempotencyKey: key });
    if (!existing) return null;
    if (existing.requestHash !== requestHash) {
      throw new DomainError(ErrorCode.IDEMPOTENCY_CONFLICT, 'This idempotencyKey was already used with a different order');
    }
    return existing;
  }
}

function canSee(user: User, order: Order): boolean {
  return user.role === 'admin' || order.customerId === user.id;
}

/** A readable, date-prefixed order number in China time: `20261126193045` + 8 random digits. */
export function newOrderNo(now: Date): string {
  const china = new Date(now.getTime() + 8 * 3600_000).toISOString();
  const stamp = china.slice(0, 19).replace(/[-T:]/g, '');
  return stamp + String(randomInt(0, 100_000_000)).padStart(8, '0');
}

/** A stable hash of what an order request asks for, to tell an idempotent replay from a conflicting reuse. */
export function hashOrderInput(input: OrderLinesInput): string {
  const a = input.shippingAddress;
  const canonical = {
    items: input.items.map((i) => [i.sku, i.quantity]),
    couponCode: input.couponCode ?? null,
    shippingAddress: a
      ? [a.name, a.phone, a.province, a.city, a.district ?? null, a.line1, a.postalCode ?? null]
      : null,
    note: input.note ?? null,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}
