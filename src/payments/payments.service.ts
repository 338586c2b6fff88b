import { randomInt } from 'node:crypto';
import { OptimisticLockError, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/knex';
import type { NotificationOutcome } from '../callbacks/notification.entity';
import { Order } from '../orders/order.entity';
import type { OrdersService } from '../orders/orders.service';
import { OrderStatus, guardedTransitionSql, transition, transitionRow } from '../orders/status-machine';
import { OUTBOX_INSERT, type Emit, type Outbox } from '../realtime/outbox';
import { orderTopic, orderTopicSql, statusPayload, statusPayloadSql } from '../realtime/topics';
import { actorOf, type User } from '../shared/auth';
import { isId, newId } from '../shared/db/entity';
import { Sql, readInt } from '../shared/db/sql';
import type { Orm } from '../shared/db/orm';
import { DomainError, ErrorCode, badInput, notFound } from '../shared/errors';
import type { Logger } from '../shared/logger';
import { CHANNEL_PROVIDER, PaymentChannel } from './channels';
import { Payment, type PaymentSessionData } from './payment.entity';
import { PaymentStatus, RefundStatus } from './payment-status';
import { ProviderRejectedError } from './providers/errors';
import type { CreatePaymentResult, PaymentProvider, PaymentQueryResult, ProviderRefundState } from './providers/provider';
import type { ProviderRegistry } from './providers/registry';
import { Refund } from './refund.entity';

export interface PayInput {
  orderId: string;
  channel: PaymentChannel;
  openid?: string | null;
  clientIp?: string | null;
  returnUrl?: string | null;
}

export interface PaymentSessionResult extends PaymentSessionData {
  payment: Payment;
}

/** A provider's word on a payment, from a verified callback, a query, or a bill confirmed by a query. */
export interface PaymentResult {
  status: 'SUCCEEDED' | 'FAILED' | 'CLOSED';
  providerTransactionId?: string;
  amount?: number;
  paidAt?: Date;
  raw?: unknown;
  reason?: string;
}

/** The verified notification that carried a result: recorded in the inbox in the same transaction as the change. */
export interface InboxEntry {
  provider: string;
  notificationId: string;
  rawBody: string;
  payload: unknown;
}

export type ApplyOutcome = 'applied' | 'duplicate' | 'unknown';

export interface PaymentsSettings {
  /** The externally reachable base URL, for notify_urls (read at call time: known only once the server listens). */
  publicBaseUrl: () => string;
  /** Seconds after creation at which a payment with no result is queried (contract: PAYMENT_QUERY_DELAYS). */
  queryDelays: number[];
}

const changedConcurrently = (p: { paymentNo: string }) => () => new OptimisticLockError(`payment ${p.paymentNo} was changed concurrently`);

/** A new payment's row; followed by a SELECT of its values (`createPaymentRow`, `orderWithOpenPayments`). */
const PAYMENT_INSERT = `insert into payments (id, merchant_id, created_at, updated_at, order_id, payment_no, channel, status, amount, currency,
  expires_at, next_query_at, attempts, version)`;

/** Payments that may still be payable at the provider, so they are closed there when the order moves on. */
const OPEN_AT_PROVIDER = [PaymentStatus.PENDING, PaymentStatus.FAILED];
const LIVE_ORDER = new Set([OrderStatus.PENDING_PAYMENT, OrderStatus.PAYING]);
const PAID_ORDER = new Set([OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.COMPLETED, OrderStatus.REFUNDED]);

/**
 * Payments: payOrder, the one path every provider result takes into the order (callbacks, queries, reconciliation),
 * closing at the provider, and refunds. Never holds a database transaction open across a provider call: each step
 * commits what it knows before the next HTTP call, so a crash or timeout leaves a row the query fallback can finish.
 */
export class PaymentsService {
  constructor(
    private readonly orm: Orm,
    private readonly registry: ProviderRegistry,
    private readonly outbox: Outbox,
    private readonly orders: OrdersService,
    private readonly settings: PaymentsSettings,
    private readonly log: Logger,
  ) {}

  // ─── payOrder ───────────────────────────────────────────────────────────────────────────────────────────────

  async pay(user: User, input: PayInput): Promise<PaymentSessionResult> {
    const now = new Date();
    const { order, live, saved } = await this.orderWithOpenPayments(input.orderId, { user, input, now });
    if (!order || order.customerId !== user.id) throw notFound('Order');
    assertPayable(order, now);
    const provider = this.provider(order.merchantId, input.channel);
    const missing = missingInput(input);
    if (missing) throw badInput(missing);

    const same = live.find(
      (p) => p.status === PaymentStatus.PENDING && p.channel === input.channel && (!p.expiresAt || p.expiresAt > new Date()),
    );
    if (same?.session) return this.session(same);

    // Switching channel: the old payment is closed at the provider first, so it can no longer be paid.
    for (const old of live.filter((p) => p !== same)) {
      if ((await this.closeAtProvider(old, actorOf(user))) === 'paid') {
        throw new DomainError(ErrorCode.ALREADY_PAID, 'The order was paid while switching the payment channel');
      }
    }

    const payment = saved ?? same ?? (await this.createPaymentRow(order, input.channel));
    let created;
    try {
      created = await provider.createPayment({
        channel: payment.channel,
        paymentNo: payment.paymentNo,
        amount: payment.amount,
        currency: payment.currency,
        description: describeOrder(order),
        expiresAt: payment.expiresAt!,
        notifyUrl: this.notifyUrl(provider.name),
        openid: input.openid,
        clientIp: input.clientIp,
        returnUrl: input.returnUrl,
        providerReference: payment.providerReference,
      });
    } catch (err) {
      await this.recordCreateFailure(payment.id, err);
      throw err;
    }
    const session: PaymentSessionData = {
      qrCodeUrl: created.qrCodeUrl,
      redirectUrl: created.redirectUrl,
      jsapiParams: created.jsapiParams,
      clientSecret: created.clientSecret,
    };
    await this.recordSession(order, payment, session, created, actorOf(user));
    payment.session = session;
    payment.providerReference = created.providerReference ?? payment.providerReference;
    return this.session(payment);
  }

  /**
   * The session and PENDING_PAYMENT → PAYING, once the provider answered. Usually nothing touched the payment or the
   * order since they were read, so every write is guarded by the versions read and queued (`Sql.later`): on PostgreSQL
   * the whole change is one statement. When something did (a callback beat us here, the payment paid before the create
   * call returned; or the order moved on), a guard misses, nothing is written, and the change is made again guarded by
   * status: the session is saved, and PAYING recorded only while the payment is still PENDING and the order
   * PENDING_PAYMENT, so the other change stands.
   */
  private async recordSession(order: Order, payment: Payment, session: PaymentSessionData, created: CreatePaymentResult, actor: string): Promise<void> {
    const by = { actor, reason: `paying with ${payment.channel}` };
    const saveSession = (sql: Sql) => ({
      text: `update payments set session = ?, provider_reference = coalesce(?, provider_reference),
         provider_data = ${sql.jsonSetKey('provider_data', 'create')}, updated_at = ?, version = version + 1
       where id = ?`,
      params: [sql.json(session), created.providerReference ?? null, JSON.stringify(created.raw ?? null), new Date(), payment.id],
    });
    const paying = (row: OrderState) => statusPayload(row, { ...payment, status: PaymentStatus.PENDING });
    try {
      await this.outbox.sqlTransaction(async (sql, emit) => {
        const save = saveSession(sql);
        await sql.later(`${save.text} and version = ?`, [...save.params, payment.version], changedConcurrently(payment));
        if (order.status !== OrderStatus.PENDING_PAYMENT) return;
        const row = stateOf(order);
        await transitionRow(sql, row, [OrderStatus.PAYING], by);
        emit(orderTopic(order.id), paying(row));
      });
      return;
    } catch (err) {
      if (!(err instanceof OptimisticLockError)) throw err;
    }
    await this.outbox.sqlTransaction(async (sql, emit) => {
      const save = saveSession(sql);
      const [saved] = await sql.rows<{ status: PaymentStatus }>(`${save.text} returning status`, save.params);
      if (saved?.status !== PaymentStatus.PENDING || order.status !== OrderStatus.PENDING_PAYMENT) return;
      const row = stateOf(order);
      if (await transitionRow(sql, row, [OrderStatus.PAYING], by, {}, new Date(), 'status')) emit(orderTopic(order.id), paying(row));
    });
  }

  /**
   * The order and its payments that may still be payable at the provider, in one read (payOrder's hot path; see
   * shared/db/sql.ts), mapped into entities of a fresh EntityManager.
   *
   * On PostgreSQL the same statement also saves the payment of the common first payOrder (`saved`): when the order
   * is the customer's, payable (status, expiry, a merchant that takes the channel) and has no payment open at a
   * provider, the new PENDING payment is inserted from the order's row, as `createPaymentRow` would. One round trip
   * instead of two, since every round trip costs both sides a system call on these machines (README, "Performance").
   * Anything else inserts nothing, and payOrder goes on from what was read: answers NOT_FOUND or why the order cannot
   * be paid, reuses or closes the open payments, or saves the payment with `createPaymentRow`. SQLite reads only: its
   * statements are in-process calls, nothing to save.
   */
  private async orderWithOpenPayments(
    orderId: string,
    request?: { user: User; input: PayInput; now: Date },
  ): Promise<{ order: Order | null; live: Payment[]; saved: Payment | null }> {
    if (!isId(orderId)) return { order: null, live: [], saved: null };
    const em = this.orm.em.fork();
    const sql = Sql.on(em);
    // Every column of the payments table, from the entity's metadata, prefixed apart from the order's.
    const columns = em.getMetadata().get(Payment.name).props.flatMap((prop) => prop.fieldNames ?? []);
    const paymentColumns = columns.map((c) => `p.${c} as p_${c}`).join(', ');
    const open = OPEN_AT_PROVIDER.map(() => '?').join(', ');
    const merchants = request ? this.registry.merchantsFor(request.input.channel) : [];
    const insert =
      sql.batchesWrites && request && !missingInput(request.input) && merchants.length ? this.newPayment(request.input.channel, request.now) : null;
    const rows = insert
      ? await sql.rows<Record<string, unknown>>(
          `with o as (select * from orders where id = ?),
             p as (select * from payments where order_id = ? and status in (${open})),
             inserted as (${PAYMENT_INSERT}
               select ?, o.merchant_id, ?, ?, o.id, ?, ?, ?, o.total_amount, o.currency, o.expires_at, ?, 0, 1 from o
               where o.customer_id = ? and o.merchant_id = any(?) and o.status in (?, ?) and (o.expires_at is null or o.expires_at > ?)
                 and not exists (select 1 from p)
               returning id)
           select o.*, ${paymentColumns}, (select count(*) from inserted) as payment_saved
           from o left join p on true order by p.id`,
          [
            ...[orderId, orderId, ...OPEN_AT_PROVIDER],
            ...[insert.id, insert.createdAt, insert.updatedAt, insert.paymentNo, insert.channel, insert.status, insert.nextQueryAt],
            ...[request!.user.id, merchants, OrderStatus.PENDING_PAYMENT, OrderStatus.PAYING, request!.now],
          ],
        )
      : await sql.rows<Record<string, unknown>>(
          `select o.*, ${paymentColumns}
           from orders o left join payments p on p.order_id = o.id and p.status in (${open})
           where o.id = ? order by p.id`,
          [...OPEN_AT_PROVIDER, orderId],
        );
    if (!rows.length) return { order: null, live: [], saved: null };
    const orderRow = Object.fromEntries(Object.entries(rows[0]!).filter(([k]) => !k.startsWith('p_') && k !== 'payment_saved'));
    const order = em.map(Order, orderRow);
    const live = rows
      .filter((r) => r.p_id != null)
      .map((r) => em.map(Payment, Object.fromEntries(columns.map((c) => [c, r[`p_${c}`]]))));
    const saved = insert && readInt(rows[0]!.payment_saved) === 1 ? Object.assign(insert, paymentOf(order)) : null;
    return { order, live, saved };
  }

  /**
   * The payment row, saved before the provider is called (a crash or timeout then leaves a row the query fallback can
   * finish). One statement: it is inserted only while the order is still payable, checked in the same statement.
   */
  private async createPaymentRow(order: Order, channel: PaymentChannel): Promise<Payment> {
    const now = new Date();
    const payment = Object.assign(this.newPayment(channel, now), paymentOf(order));
    const inserted = await Sql.on(this.orm.em).run(
      `${PAYMENT_INSERT}
       select ?, ?, ?, ?, id, ?, ?, ?, ?, ?, ?, ?, 0, 1 from orders
       where id = ? and status in (?, ?) and (expires_at is null or expires_at > ?)`,
      [
        payment.id, payment.merchantId, now, now, payment.paymentNo, channel, payment.status, payment.amount,
        payment.currency, payment.expiresAt, payment.nextQueryAt, order.id, OrderStatus.PENDING_PAYMENT, OrderStatus.PAYING, now,
      ],
    );
    if (!inserted) {
      // The order moved on since it was read (paid, cancelled, expired): answer why.
      assertPayable(await this.orm.em.fork().findOneOrFail(Order, { id: order.id }), now);
      throw new DomainError(ErrorCode.INVALID_TRANSITION, 'The order can no longer be paid');
    }
    return payment;
  }

  /** A new PENDING payment on `channel`, not saved; what it takes from its order comes from `paymentOf`. */
  private newPayment(channel: PaymentChannel, now: Date): Payment {
    return Object.assign(new Payment(), {
      paymentNo: newMerchantNo('P', now),
      channel,
      status: PaymentStatus.PENDING,
      nextQueryAt: new Date(now.getTime() + this.settings.queryDelays[0]! * 1000),
      createdAt: now,
      updatedAt: now,
      version: 1,
    } satisfies Partial<Payment>);
  }

  /** A refused create fails the payment; a timeout leaves it PENDING for the query fallback to settle or close. */
  private async recordCreateFailure(paymentId: string, err: unknown): Promise<void> {
    const em = this.orm.em.fork();
    const p = await em.findOneOrFail(Payment, { id: paymentId });
    if (err instanceof ProviderRejectedError && p.status === PaymentStatus.PENDING && !p.session) {
      p.status = PaymentStatus.FAILED;
      p.failureReason = `create refused: ${err.providerCode}`.slice(0, 200);
      p.nextQueryAt = null;
    } else {
      p.nextQueryAt = new Date();
    }
    await em.flush();
    this.log.warn({ paymentNo: p.paymentNo, err: (err as Error).message }, 'payment creation failed at the provider');
  }

  /** The QR image (`qrCodeImage`) is drawn only when a client selects it (PaymentSessionResolver). */
  private session(payment: Payment): PaymentSessionResult {
    return { payment, ...(payment.session ?? {}) };
  }

  // ─── provider results ───────────────────────────────────────────────────────────────────────────────────────

  /**
   * The one path a provider's result takes into a payment and its order. Applies once (version-guarded updates and
   * the inbox's unique key make concurrent copies no-ops) and never moves an order backwards: a success for a payment
   * that is no longer the order's live one is recorded and refunded automatically.
   *
   * A verified notification also passes what it claims (`expect`): the payment must be this provider's and merchant's
   * and the amount and currency the payment's; otherwise a NotificationMismatch is thrown and nothing is written. The
   * check reads the same row the change is made from (one read per delivery).
   *
   * Hand-written statements (shared/db/sql.ts): one read of the payment with its order (on SQLite inside the
   * transaction), then version-guarded updates, the history, inbox and outbox rows (on PostgreSQL one statement of
   * its own: `Sql.later`). On PostgreSQL the common notification (a success for a payment whose order is PAYING)
   * first tries `applySuccessAtOnce`, read and writes in one statement; whatever that does not apply comes here.
   */
  async applyPaymentResult(
    paymentNo: string,
    result: PaymentResult,
    actor: string,
    inbox?: InboxEntry,
    expect?: NotificationClaim,
  ): Promise<ApplyOutcome> {
    const read = Sql.on(this.orm.em);
    if (inbox && expect && result.status === 'SUCCEEDED' && read.dialect === 'postgresql') {
      if (await this.applySuccessAtOnce(paymentNo, result, actor, inbox, expect)) return 'applied';
    }
    let autoRefundId: string | null = null;
    const outcome = await this.retryOnConflict(async () => {
      autoRefundId = null;
      try {
        // PostgreSQL: read before the transaction. Every write below is guarded by the versions read here, so a
        // concurrent change makes the transaction fail and this attempt start again, and the writes alone go as one
        // statement. SQLite: read inside it. Its transactions run one at a time, so nothing changes the row between
        // the read and the writes, and a copy of the notification that arrived alongside finds it applied.
        const before = read.batchesWrites ? await read.one<PaymentWithOrderRow>(PAYMENT_WITH_ORDER, [paymentNo]) : undefined;
        if (before === null) return unknownPayment(paymentNo, expect);
        if (before && expect) checkClaim(paymentState(before), expect);
        return await this.outbox.sqlTransaction(async (sql, emit) => {
          const row = before ?? (await sql.one<PaymentWithOrderRow>(PAYMENT_WITH_ORDER, [paymentNo]));
          if (!row) return unknownPayment(paymentNo, expect);
          const p = paymentState(row);
          if (!before && expect) checkClaim(p, expect);
          const applied = await this.applyToPayment(sql, emit, p, orderState(row), result, actor);
          if (applied.refundId) autoRefundId = applied.refundId;
          const outcome: ApplyOutcome = applied.changed ? 'applied' : 'duplicate';
          if (inbox) await this.recordInbox(sql, inbox, paymentNo, outcome);
          return outcome;
        });
      } catch (err) {
        // Another copy of the same notification was applied first.
        if (inbox && err instanceof UniqueConstraintViolationException) {
          await this.recordNotification({ ...inbox, paymentNo, outcome: 'duplicate' });
          return 'duplicate' as const;
        }
        throw err;
      }
    });
    if (autoRefundId) {
      await this.submitRefund(autoRefundId).catch((err) => this.log.error({ err }, 'automatic refund refused by the provider'));
    }
    return outcome;
  }

  /**
   * The common notification on PostgreSQL in one statement, as the callback floor does it: a verified success for a
   * PENDING (or FAILED) payment that matches the notification's claim and whose order is PAYING. One statement, its
   * own transaction, writes the payment SUCCEEDED, the order PAYING → PAID (the status machine's SQL) with its history
   * row, the inbox row and the event's outbox row; the event is published once it has committed. One round trip
   * instead of a read and a write: it is the busiest request at the busiest moment, and on these machines every round
   * trip costs both sides a system call (README, "Performance").
   *
   * Answers false when it changed nothing: a copy already applied, a claim that does not match, an order in another
   * status, or an order changed between the statement's payment update and its order update (it then fails on
   * purpose, leaving nothing behind). The caller takes the general path then, which reads first and decides.
   */
  private async applySuccessAtOnce(
    paymentNo: string,
    result: PaymentResult,
    actor: string,
    inbox: InboxEntry,
    claim: NotificationClaim,
  ): Promise<boolean> {
    const now = new Date();
    const paidAt = result.paidAt ?? now;
    const currency = claim.currency ? claim.currency.toUpperCase() : null;
    const channels = Object.values(PaymentChannel).filter((c) => CHANNEL_PROVIDER[c] === claim.provider);
    const eventId = newId();
    let row: PaidAtOnceRow | null;
    try {
      row = await Sql.on(this.orm.em).one<PaidAtOnceRow>(PAY_AT_ONCE, [
        ...[result.providerTransactionId ?? null, paidAt, JSON.stringify(result.raw ?? null), now],
        ...[paymentNo, claim.merchantId, channels, claim.amount, currency, currency],
        ...[paidAt, now],
        ...[newId(), actor, now],
        ...[newId(), inbox.provider, inbox.notificationId, paymentNo, now, `${inbox.provider}:${inbox.notificationId}`],
        ...[inbox.rawBody, JSON.stringify(inbox.payload ?? null)],
        ...[eventId, now.toISOString(), now],
      ]);
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException || (err as Error).message.includes(PAY_AT_ONCE_MISSED)) return false;
      throw err;
    }
    if (!row?.id) return false;
    const order = {
      id: row.id,
      orderNo: row.order_no,
      status: row.status,
      totalAmount: readInt(row.total_amount),
      paidAmount: readInt(row.paid_amount),
      refundedAmount: readInt(row.refunded_amount),
      version: readInt(row.version),
    };
    const payment = { id: row.payment_id, paymentNo, status: PaymentStatus.SUCCEEDED, channel: row.channel };
    await this.outbox.written([{ id: eventId, topic: orderTopic(order.id), payload: statusPayload(order, payment, now), createdAt: now }]);
    return true;
  }

  private async applyToPayment(
    sql: Sql,
    emit: Emit,
    p: PaymentState,
    order: OrderState,
    result: PaymentResult,
    actor: string,
  ): Promise<{ changed: boolean; refundId?: string }> {
    const now = new Date();
    const raw = JSON.stringify(result.raw ?? null);
    if (result.status !== 'SUCCEEDED') {
      // A FAILED attempt may still be payable at the provider (a declined card, a failed QR scan): closing ends it.
      const closesFailed = p.status === PaymentStatus.FAILED && result.status === 'CLOSED';
      if (p.status !== PaymentStatus.PENDING && !closesFailed) return { changed: false };
      const status = result.status === 'FAILED' ? PaymentStatus.FAILED : PaymentStatus.CLOSED;
      await sql.later(
        `update payments set status = ?, closed_at = ${status === PaymentStatus.CLOSED ? '?' : 'closed_at'}, failure_reason = ?,
           next_query_at = null, provider_data = ${sql.jsonSetKey('provider_data', 'result')}, updated_at = ?, version = version + 1
         where id = ? and version = ?`,
        [status, ...(status === PaymentStatus.CLOSED ? [now] : []), result.reason?.slice(0, 200) ?? null, raw, now, p.id, p.version],
        changedConcurrently(p),
      );
      emit(orderTopic(order.id), statusPayload(order, { ...p, status }));
      return { changed: true };
    }
    if (p.status === PaymentStatus.SUCCEEDED) return { changed: false };
    // A FAILED attempt was one declined try, not the end: the customer may still pay it (Stripe keeps the intent
    // payable after payment_failed). Only a CLOSED payment is no longer the order's.
    const wasLive = p.status === PaymentStatus.PENDING || p.status === PaymentStatus.FAILED;
    const paidAt = result.paidAt ?? now;
    const transactionId = result.providerTransactionId ?? p.providerTransactionId;
    await sql.later(
      `update payments set status = 'SUCCEEDED', provider_transaction_id = ?, paid_at = ?, next_query_at = null,
         provider_data = ${sql.jsonSetKey('provider_data', 'result')}, updated_at = ?, version = version + 1
       where id = ? and version = ?`,
      [transactionId, paidAt, raw, now, p.id, p.version],
      changedConcurrently(p),
    );
    const paid = { ...p, status: PaymentStatus.SUCCEEDED };

    if (wasLive && LIVE_ORDER.has(order.status)) {
      const by = { actor, reason: `paid with ${p.channel}${transactionId ? ` (${transactionId})` : ''}` };
      const path = order.status === OrderStatus.PENDING_PAYMENT ? [OrderStatus.PAYING, OrderStatus.PAID] : [OrderStatus.PAID];
      await transitionRow(sql, order, path, by, { paid_amount: p.amount, paid_at: paidAt, paid_payment_id: p.id }, now);
      order.paidAmount = p.amount;
      emit(orderTopic(order.id), statusPayload(order, paid));
      return { changed: true };
    }
    // Money arrived for a payment that can no longer go into the order: record it and give it back at once.
    const reason = PAID_ORDER.has(order.status) ? 'duplicate payment' : 'paid after close';
    const refundId = newId();
    await sql.later(
      `insert into refunds (id, merchant_id, created_at, updated_at, order_id, payment_id, refund_no, amount, status, reason,
         requested_by, next_query_at, attempts, version)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'system', ?, 0, 1)`,
      [refundId, p.merchantId, now, now, order.id, p.id, newMerchantNo('R', now), p.amount, RefundStatus.PENDING, reason, now],
    );
    this.log.warn({ paymentNo: p.paymentNo, orderNo: order.orderNo, reason }, 'refunding a payment that cannot go into its order');
    emit(orderTopic(order.id), statusPayload(order, paid));
    return { changed: true, refundId };
  }

  /** Asks the provider about a payment now and applies what it says (query fallback and admin `syncPayment`). */
  async syncPayment(paymentId: string, actor = 'system'): Promise<Payment> {
    const em = this.orm.em.fork();
    const p = isId(paymentId) ? await em.findOne(Payment, { id: paymentId }) : null;
    if (!p) throw notFound('Payment');
    if (p.status === PaymentStatus.PENDING) {
      const q = await this.providerFor(p).queryPayment(ref(p));
      await this.applyQueryResult(p, q, actor);
    }
    return this.orm.em.fork().findOneOrFail(Payment, { id: paymentId });
  }

  private async applyQueryResult(p: Payment, q: PaymentQueryResult, actor: string): Promise<void> {
    if (q.state === 'SUCCEEDED') {
      if (q.amount !== undefined && q.amount !== p.amount) {
        this.log.error({ paymentNo: p.paymentNo, expected: p.amount, got: q.amount }, 'provider query amount mismatch; not applied');
        return;
      }
      await this.applyPaymentResult(p.paymentNo, { status: 'SUCCEEDED', providerTransactionId: q.providerTransactionId, paidAt: q.paidAt, raw: q.raw }, actor);
    } else if (q.state === 'CLOSED' || q.state === 'FAILED') {
      await this.applyPaymentResult(p.paymentNo, { status: q.state, raw: q.raw, reason: `provider says ${q.state}` }, actor);
    }
  }

  // ─── closing ────────────────────────────────────────────────────────────────────────────────────────────────

  /** Cancellation seam: closes every live payment of the order at its provider ('paid' when one had succeeded). */
  async closeLivePayments(orderId: string, actor: string): Promise<'closed' | 'paid'> {
    const live = await this.orm.em.fork().find(Payment, { orderId, status: { $in: OPEN_AT_PROVIDER } });
    for (const p of live) if ((await this.closeAtProvider(p, actor)) === 'paid') return 'paid';
    return 'closed';
  }

  /**
   * Closes one payment at the provider, then locally. If the provider refuses because it was paid, the success is
   * applied (the order becomes PAID) and 'paid' is answered. A network failure propagates: nothing changes locally.
   */
  async closeAtProvider(p: Payment, actor: string): Promise<'closed' | 'paid'> {
    const provider = this.providerFor(p);
    try {
      await provider.closePayment(ref(p));
    } catch (err) {
      if (!(err instanceof ProviderRejectedError)) throw err;
      const q = await provider.queryPayment(ref(p));
      if (q.state !== 'SUCCEEDED') throw err;
      await this.applyQueryResult(p, q, `provider:${provider.name}`);
      return 'paid';
    }
    await this.applyPaymentResult(p.paymentNo, { status: 'CLOSED', reason: `closed by ${actor}` }, actor);
    return 'closed';
  }

  // ─── refunds ────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Sends a saved refund to its provider (first time or retry, always with the same refundNo) and records the answer.
   * A network failure leaves it PENDING for the refund query fallback.
   */
  async submitRefund(refundId: string): Promise<Refund> {
    const em = this.orm.em.fork();
    const refund = await em.findOneOrFail(Refund, { id: refundId });
    const payment = await em.findOneOrFail(Payment, { id: refund.paymentId });
    const provider = this.providerFor(payment);
    const actor = `provider:${provider.name}`;
    try {
      const r = await provider.refund({
        channel: payment.channel,
        paymentNo: payment.paymentNo,
        refundNo: refund.refundNo,
        providerReference: payment.providerReference,
        providerTransactionId: payment.providerTransactionId,
        amount: refund.amount,
        totalAmount: payment.amount,
        currency: payment.currency,
        reason: refund.reason,
        notifyUrl: this.notifyUrl(provider.name),
        requestedAt: refund.createdAt,
      });
      if (r.state === 'PENDING') await this.scheduleRefundCheck(refund.id, r.providerRefundId, r.raw);
      else await this.applyRefundResult(refund.refundNo, r.state, { providerRefundId: r.providerRefundId, raw: r.raw }, actor);
    } catch (err) {
      if (err instanceof ProviderRejectedError) {
        await this.applyRefundResult(refund.refundNo, 'FAILED', { raw: { code: err.providerCode, message: err.message } }, actor);
        throw err;
      }
      this.log.warn({ refundNo: refund.refundNo, err: (err as Error).message }, 'refund call failed; it stays PENDING and is retried with the same refundNo');
      await this.scheduleRefundCheck(refund.id);
    }
    return this.orm.em.fork().findOneOrFail(Refund, { id: refundId });
  }

  /** Asks the provider about a PENDING refund; one it never received is sent again with the same refundNo. */
  async checkRefund(refundId: string): Promise<void> {
    const em = this.orm.em.fork();
    const refund = await em.findOneOrFail(Refund, { id: refundId });
    if (refund.status !== RefundStatus.PENDING) return;
    const payment = await em.findOneOrFail(Payment, { id: refund.paymentId });
    const provider = this.providerFor(payment);
    let r;
    try {
      r = await provider.queryRefund({
        channel: payment.channel,
        paymentNo: payment.paymentNo,
        refundNo: refund.refundNo,
        providerReference: refund.providerRefundId ?? payment.providerReference,
        requestedAt: refund.createdAt,
      });
    } catch (err) {
      if (err instanceof ProviderRejectedError) {
        // Unknown at the provider (our call never reached it): send it again, same refundNo, so it refunds once.
        await this.submitRefund(refundId).catch(() => undefined);
        return;
      }
      await this.scheduleRefundCheck(refundId);
      return;
    }
    if (r.state === 'PENDING') await this.scheduleRefundCheck(refundId, r.providerRefundId, r.raw);
    else await this.applyRefundResult(refund.refundNo, r.state, { providerRefundId: r.providerRefundId, raw: r.raw }, `provider:${provider.name}`);
  }

  private async scheduleRefundCheck(refundId: string, providerRefundId?: string, raw?: unknown): Promise<void> {
    const em = this.orm.em.fork();
    const refund = await em.findOneOrFail(Refund, { id: refundId });
    if (refund.status !== RefundStatus.PENDING) return;
    const delays = this.settings.queryDelays;
    refund.nextQueryAt = new Date(Date.now() + delays[Math.min(refund.attempts, delays.length - 1)]! * 1000);
    refund.attempts += 1;
    if (providerRefundId) refund.providerRefundId = providerRefundId;
    if (raw !== undefined) refund.providerData = { ...refund.providerData, lastAnswer: raw };
    await em.flush().catch((err) => {
      if (!(err instanceof OptimisticLockError)) throw err; // a result arrived meanwhile: nothing to schedule
    });
  }

  /**
   * Admin refund of the order's paid payment, full (default: all that is left) or partial. The refund row and its
   * refundNo are committed before the provider is called; concurrent refunds of one order serialize on the order's
   * version, so together they never exceed the paid amount. Idempotent per order by `idempotencyKey`.
   */
  async refundOrder(
    admin: User,
    input: { orderId: string; amount?: number | null; reason?: string | null; idempotencyKey?: string | null },
  ): Promise<Refund> {
    if (input.amount != null && (!Number.isInteger(input.amount) || input.amount < 1)) {
      throw badInput('amount must be a positive integer in minor units');
    }
    const key = input.idempotencyKey ?? null;
    const replay = async () => {
      if (!key || !isId(input.orderId)) return null;
      const existing = await this.orm.em.fork().findOne(Refund, { orderId: input.orderId, idempotencyKey: key });
      if (!existing) return null;
      if ((input.amount != null && input.amount !== existing.amount) || (input.reason ?? null) !== (existing.reason ?? null)) {
        throw new DomainError(ErrorCode.IDEMPOTENCY_CONFLICT, 'This idempotencyKey was already used for a different refund');
      }
      return existing;
    };
    const previous = await replay();
    if (previous) return previous;
    let refund: Refund;
    try {
      refund = await this.retryOnConflict(() =>
        this.outbox.transaction(this.orm.em.fork(), async (tx, emit) => {
          const order = await this.orders.load(tx, admin, input.orderId);
          if (order.status === OrderStatus.REFUNDED) throw new DomainError(ErrorCode.REFUND_EXCEEDS_PAID, 'The order is already fully refunded');
          if (!PAID_ORDER.has(order.status) || !order.paidPaymentId) {
            throw new DomainError(ErrorCode.INVALID_TRANSITION, `An order in ${order.status} has nothing to refund`);
          }
          const payment = await tx.findOneOrFail(Payment, { id: order.paidPaymentId });
          const taken = await tx.find(Refund, { paymentId: payment.id, status: { $in: [RefundStatus.PENDING, RefundStatus.SUCCEEDED] } });
          const left = order.paidAmount - taken.reduce((sum, r) => sum + r.amount, 0);
          const amount = input.amount ?? left;
          if (amount < 1 || amount > left) {
            throw new DomainError(ErrorCode.REFUND_EXCEEDS_PAID, `At most ${Math.max(left, 0)} can still be refunded`, { refundable: Math.max(left, 0) });
          }
          order.updatedAt = new Date(); // bumps the version: concurrent refunds of this order serialize here
          const now = new Date();
          const created = tx.create(Refund, {
            merchantId: order.merchantId,
            orderId: order.id,
            paymentId: payment.id,
            refundNo: newMerchantNo('R', now),
            amount,
            reason: input.reason ?? null,
            requestedBy: actorOf(admin),
            idempotencyKey: key,
            nextQueryAt: new Date(now.getTime() + this.settings.queryDelays[0]! * 1000),
            createdAt: now,
            updatedAt: now,
          });
          emit(orderTopic(order.id), statusPayload(order, payment));
          return created;
        }),
      );
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        const existing = await replay();
        if (existing) return existing;
      }
      throw err;
    }
    return this.submitRefund(refund.id);
  }

  /**
   * The one path a refund result takes: PENDING → SUCCEEDED | FAILED, once. A SUCCEEDED refund of the order's paid
   * payment adds to `refundedAmount`; reaching `paidAmount` moves the order to REFUNDED (restocking if unshipped).
   */
  async applyRefundResult(
    refundNo: string,
    state: ProviderRefundState,
    extra: { providerRefundId?: string; raw?: unknown },
    actor: string,
    inbox?: InboxEntry,
  ): Promise<ApplyOutcome> {
    return this.retryOnConflict(async () => {
      try {
        return await this.outbox.transaction(this.orm.em.fork(), async (tx, emit) => {
          const refund = await tx.findOne(Refund, { refundNo });
          if (!refund) return 'unknown' as const;
          let outcome: ApplyOutcome = 'duplicate';
          if (refund.status === RefundStatus.PENDING && state !== 'PENDING') {
            outcome = 'applied';
            refund.status = state === 'SUCCEEDED' ? RefundStatus.SUCCEEDED : RefundStatus.FAILED;
            refund.completedAt = new Date();
            refund.nextQueryAt = null;
            refund.providerRefundId = extra.providerRefundId ?? refund.providerRefundId;
            refund.providerData = { ...refund.providerData, result: extra.raw ?? null };
            const order = await tx.findOneOrFail(Order, { id: refund.orderId });
            const payment = await tx.findOneOrFail(Payment, { id: refund.paymentId });
            // Only refunds of the payment that went into the order count; refunds of extra payments do not.
            if (refund.status === RefundStatus.SUCCEEDED && refund.paymentId === order.paidPaymentId) {
              order.refundedAmount += refund.amount;
              order.updatedAt = new Date();
              if (order.refundedAmount >= order.paidAmount && order.status !== OrderStatus.REFUNDED) {
                const unshipped = order.status === OrderStatus.PAID;
                transition(tx, order, OrderStatus.REFUNDED, { actor, reason: `refunded ${order.refundedAmount}` });
                if (unshipped) await this.orders.releaseReservations(tx, order);
              }
            }
            emit(orderTopic(order.id), statusPayload(order, payment));
          } else if (refund.status === RefundStatus.PENDING && extra.providerRefundId && !refund.providerRefundId) {
            refund.providerRefundId = extra.providerRefundId;
          }
          if (inbox) await this.recordInbox(Sql.on(tx), inbox, null, outcome);
          return outcome;
        });
      } catch (err) {
        if (inbox && err instanceof UniqueConstraintViolationException) {
          await this.recordNotification({ ...inbox, paymentNo: null, outcome: 'duplicate' });
          return 'duplicate' as const;
        }
        throw err;
      }
    });
  }

  // ─── inbox ──────────────────────────────────────────────────────────────────────────────────────────────────

  /** The inbox row of a delivery that was applied (or found already applied) in the transaction of `sql`. */
  private async recordInbox(sql: Sql, inbox: InboxEntry, paymentNo: string | null, outcome: ApplyOutcome): Promise<void> {
    const applied = outcome === 'applied';
    await insertNotification(sql, {
      ...inbox,
      paymentNo,
      outcome: applied ? 'applied' : 'duplicate',
      appliedKey: applied ? `${inbox.provider}:${inbox.notificationId}` : null,
    });
  }

  /** Records a delivery that changes nothing (rejected, flagged, duplicate): one INSERT of its own. */
  async recordNotification(n: {
    provider: string;
    notificationId?: string | null;
    paymentNo?: string | null;
    outcome: NotificationOutcome;
    reason?: string;
    rawBody: string;
    payload?: unknown;
  }): Promise<void> {
    await insertNotification(Sql.on(this.orm.em), { ...n, reason: n.reason?.slice(0, 300) ?? null, appliedKey: null });
  }

  // ─── helpers ────────────────────────────────────────────────────────────────────────────────────────────────

  notifyUrl(provider: string): string {
    return `${this.settings.publicBaseUrl()}/notify/${provider}`;
  }

  provider(merchantId: string, channel: PaymentChannel): PaymentProvider {
    const provider = this.registry.forChannel(merchantId, channel);
    if (!provider) throw badInput(`Payment channel ${channel} is not available for this merchant`);
    return provider;
  }

  providerFor(p: Payment): PaymentProvider {
    const provider = this.registry.byName(p.merchantId, CHANNEL_PROVIDER[p.channel]);
    if (!provider) throw new Error(`No ${CHANNEL_PROVIDER[p.channel]} provider for merchant ${p.merchantId}`);
    return provider;
  }

  private async retryOnConflict<T>(work: () => Promise<T>, attempts = 5): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (err) {
        if (!(err instanceof OptimisticLockError) || attempt >= attempts) throw err;
      }
    }
  }
}

/**
 * One `paymentNotifications` row, written by hand (shared/db/sql.ts) on every delivery's path; `appliedKey` is set
 * only on the delivery that was applied (unique: a notification applies once however many copies arrive).
 */
async function insertNotification(
  sql: Sql,
  n: {
    provider: string;
    notificationId?: string | null;
    paymentNo?: string | null;
    outcome: NotificationOutcome;
    reason?: string | null;
    appliedKey: string | null;
    rawBody: string;
    payload?: unknown;
  },
): Promise<void> {
  await sql.later(
    `${NOTIFICATION_INSERT} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      newId(),
      n.provider,
      n.notificationId ?? null,
      n.paymentNo ?? null,
      new Date(),
      n.outcome,
      sql.bool(n.outcome === 'flagged'),
      n.reason ?? null,
      n.appliedKey,
      n.rawBody,
      sql.json(n.payload),
    ],
  );
}

/** What a new payment takes from its order (the columns `PAYMENT_INSERT` fills from the order's row). */
function paymentOf(order: Order) {
  return {
    merchantId: order.merchantId,
    orderId: order.id,
    amount: order.totalAmount,
    currency: order.currency,
    expiresAt: order.expiresAt ?? null,
  } satisfies Partial<Payment>;
}

/** What a channel needs from the payer and the input lacks (WeChat's JSAPI: the openid; H5: the IP address), or null. */
function missingInput(input: PayInput): string | null {
  if (input.channel === PaymentChannel.WECHAT_JSAPI && !input.openid) return 'WECHAT_JSAPI needs the payer openid';
  if (input.channel === PaymentChannel.WECHAT_H5 && !input.clientIp) return 'WECHAT_H5 needs the payer clientIp';
  return null;
}

function assertPayable(order: Order, now: Date): void {
  if (PAID_ORDER.has(order.status)) throw new DomainError(ErrorCode.ALREADY_PAID, 'The order is already paid');
  if (!LIVE_ORDER.has(order.status)) {
    throw new DomainError(ErrorCode.INVALID_TRANSITION, `An order in ${order.status} cannot be paid`);
  }
  if (order.expiresAt && order.expiresAt <= now) {
    throw new DomainError(ErrorCode.INVALID_TRANSITION, 'The order has expired and can no longer be paid');
  }
}

function ref(p: Payment) {
  return { channel: p.channel, paymentNo: p.paymentNo, providerReference: p.providerReference };
}

function describeOrder(order: Order): string {
  const first = order.items[0]!;
  const more = order.items.length > 1 ? ` and ${order.items.length - 1} more` : '';
  return `${first.name}${more} (order ${order.orderNo})`;
}

/** Merchant numbers for providers: prefix + China-time stamp + 10 random digits (25 chars, [0-9A-Z]). */
export function newMerchantNo(prefix: 'P' | 'R', now: Date): string {
  const china = new Date(now.getTime() + 8 * 3600_000).toISOString();
  return prefix + china.slice(0, 19).replace(/[-T:]/g, '') + String(randomInt(0, 10_000_000_000)).padStart(10, '0');
}

/** A result for a payment this service does not have: a notification's claim fails, a query's result is ignored. */
function unknownPayment(paymentNo: string, expect: NotificationClaim | undefined): 'unknown' {
  if (expect) throw new NotificationMismatch(`unknown payment ${paymentNo}`);
  return 'unknown';
}

/** The head of every INSERT of a `paymentNotifications` row. */
const NOTIFICATION_INSERT = `insert into payment_notifications (id, provider, notification_id, payment_no, received_at, outcome,
  flagged, reason, applied_key, raw_body, payload)`;

// ─── the one-statement path of the common notification (PostgreSQL; applySuccessAtOnce) ───────────────────────────

const PAID_FROM_PAYING = guardedTransitionSql(OrderStatus.PAYING, OrderStatus.PAID);
/** The text of the error the statement raises when it changed the payment but not its order (it then keeps nothing). */
const PAY_AT_ONCE_MISSED = 'payment changed without its order';

/**
 * Clauses in order: the payment's conditional update (the claim checked in its WHERE), the order's (still PAYING),
 * the history, inbox and outbox rows from the order's row, and a last SELECT that answers the order's row (nulls when
 * nothing matched) and fails the statement if the payment changed without its order. Parameters: see the caller.
 */
const PAY_AT_ONCE = `with p as (
    update payments set status = 'SUCCEEDED', provider_transaction_id = coalesce(?, provider_transaction_id), paid_at = ?,
      next_query_at = null, provider_data = jsonb_set(coalesce(provider_data, '{}'::jsonb), '{result}', ?::jsonb), updated_at = ?,
      version = version + 1
    where payment_no = ? and status in ('PENDING', 'FAILED') and merchant_id = ? and channel = any(?::text[])
      and amount = ? and (?::text is null or currency = ?::text)
      and exists (select 1 from orders where orders.id = payments.order_id and orders.${PAID_FROM_PAYING.where})
    returning id, order_id, channel, payment_no, provider_transaction_id, amount),
  o as (
    update orders set ${PAID_FROM_PAYING.set}, paid_amount = p.amount, paid_at = ?, paid_payment_id = p.id, updated_at = ?,
      version = orders.version + 1
    from p where orders.id = p.order_id and orders.${PAID_FROM_PAYING.where}
    returning orders.id, orders.order_no, orders.status, orders.total_amount, orders.paid_amount, orders.refunded_amount,
      orders.version, p.id as payment_id, p.payment_no, 'SUCCEEDED'::text as payment_status, p.channel, p.provider_transaction_id),
  h as (
    insert into order_events (id, order_id, from_status, to_status, actor, reason, at)
    select ?, o.id, ${PAID_FROM_PAYING.history}, ?, 'paid with ' || o.channel || coalesce(' (' || o.provider_transaction_id || ')', ''), ?
    from o),
  n as (${NOTIFICATION_INSERT} select ?, ?, ?, ?, ?, 'applied', false, null, ?, ?, ?::jsonb from o),
  x as (${OUTBOX_INSERT} select ?, ${orderTopicSql('o.id')}, ${statusPayloadSql('o')}, ? from o)
  select o.id, o.order_no, o.status, o.total_amount, o.paid_amount, o.refunded_amount, o.version, o.payment_id, o.channel,
    case when (select count(*) from p) <> (select count(*) from o) then ('${PAY_AT_ONCE_MISSED} (' || (select count(*) from p) || ')')::int end as missed
  from (select 1) as one left join o on true`;

interface PaidAtOnceRow {
  id: string | null;
  order_no: string;
  status: OrderStatus;
  total_amount: number | string;
  paid_amount: number | string;
  refunded_amount: number | string;
  version: number | string;
  payment_id: string;
  channel: PaymentChannel;
}

// ─── the payment-with-order row of the apply path ──────────────────────────────────────────────────────────────

const PAYMENT_WITH_ORDER = `select p.id, p.order_id, p.merchant_id, p.channel, p.status, p.amount, p.currency, p.payment_no,
    p.provider_transaction_id, p.version, o.order_no, o.status as order_status, o.total_amount, o.paid_amount,
    o.refunded_amount, o.version as order_version
  from payments p join orders o on o.id = p.order_id where p.payment_no = ?`;

interface PaymentWithOrderRow {
  id: string;
  order_id: string;
  merchant_id: string;
  channel: PaymentChannel;
  status: PaymentStatus;
  amount: number;
  currency: string;
  payment_no: string;
  provider_transaction_id: string | null;
  version: number;
  order_no: string;
  order_status: OrderStatus;
  total_amount: number;
  paid_amount: number;
  refunded_amount: number;
  order_version: number;
}

interface PaymentState {
  id: string;
  merchantId: string;
  channel: PaymentChannel;
  status: PaymentStatus;
  amount: number;
  currency: string;
  paymentNo: string;
  providerTransactionId: string | null;
  version: number;
}

interface OrderState {
  id: string;
  orderNo: string;
  status: OrderStatus;
  totalAmount: number;
  paidAmount: number;
  refundedAmount: number;
  version: number;
}

function paymentState(r: PaymentWithOrderRow): PaymentState {
  return {
    id: r.id,
    merchantId: r.merchant_id,
    channel: r.channel,
    status: r.status,
    amount: readInt(r.amount),
    currency: r.currency,
    paymentNo: r.payment_no,
    providerTransactionId: r.provider_transaction_id,
    version: readInt(r.version),
  };
}

function stateOf(o: Order): OrderState {
  return { id: o.id, orderNo: o.orderNo, status: o.status, totalAmount: o.totalAmount, paidAmount: o.paidAmount, refundedAmount: o.refundedAmount, version: o.version };
}

function orderState(r: PaymentWithOrderRow): OrderState {
  return {
    id: r.order_id,
    orderNo: r.order_no,
    status: r.order_status,
    totalAmount: readInt(r.total_amount),
    paidAmount: readInt(r.paid_amount),
    refundedAmount: readInt(r.refunded_amount),
    version: readInt(r.order_version),
  };
}

/** What a verified notification says about the payment it names; checked against the payment before any change. */
export interface NotificationClaim {
  provider: string;
  merchantId: string;
  amount: number;
  currency?: string | null;
}

/** A verified notification that does not match its payment: nothing is applied; the callback flags it. */
export class NotificationMismatch extends Error {}

function checkClaim(p: PaymentState, claim: NotificationClaim): void {
  if (CHANNEL_PROVIDER[p.channel] !== claim.provider || p.merchantId !== claim.merchantId) {
    throw new NotificationMismatch(`unknown payment ${p.paymentNo}`);
  }
  if (claim.amount !== p.amount) throw new NotificationMismatch(`amount ${claim.amount} differs from the payment's ${p.amount}`);
  if (claim.currency && claim.currency.toUpperCase() !== p.currency) throw new NotificationMismatch(`currency ${claim.currency} differs`);
}
