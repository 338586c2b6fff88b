import { OptimisticLockError, UniqueConstraintViolationException } from '@mikro-orm/core';
import { Order } from '../orders/order.entity';
import { CHANNEL_PROVIDER, type PaymentChannel, type ProviderName } from '../payments/channels';
import { Payment } from '../payments/payment.entity';
import { PaymentStatus, RefundStatus } from '../payments/payment-status';
import type { PaymentsService } from '../payments/payments.service';
import { ProviderError, ProviderRejectedError, ProviderSignatureError } from '../payments/providers/errors';
import type { PaymentProvider } from '../payments/providers/provider';
import type { ProviderRegistry } from '../payments/providers/registry';
import { Refund } from '../payments/refund.entity';
import { DEFAULT_MERCHANT_ID, isId } from '../shared/db/entity';
import type { Orm } from '../shared/db/orm';
import { DomainError, ErrorCode, badInput, notFound } from '../shared/errors';
import type { Logger } from '../shared/logger';
import { BillFormatError, chinaDate, chinaDayRange, isDate, type Bill } from './bill';
import { DISCREPANCY_STATES, Discrepancy, type DiscrepancyState } from './discrepancy.entity';
import { DiscrepancyKind, matchBill, type FoundDiscrepancy, type LocalBook, type MatchResult } from './matcher';
import { ReconciliationReport } from './reconciliation-report.entity';

export const RECONCILABLE_PROVIDERS: readonly ProviderName[] = ['wechatpay', 'alipay', 'unionpay', 'stripe'];

/** The history actor of everything a reconciliation run changes (through the normal payment path). */
export const RECONCILIATION_ACTOR = 'reconciliation';

export interface ReconcileOptions {
  /** Who runs it: `admin:<id>`, `cli`, `schedule`. */
  actor: string;
  merchantId?: string;
  /** Scheduled runs: skip (answer null) when the day was reconciled at or after this instant, or is being reconciled. */
  notRunSince?: Date;
}

export interface ReconciliationSettings {
  /** How long a run's claim on its day lasts (a crashed instance's claim runs out after this). Default 10 minutes. */
  leaseMs?: number;
  /** How long a manual run waits for another run of the same day before giving up. Default 60 s. */
  waitMs?: number;
}

export interface DiscrepancyFilter {
  merchantId?: string;
  provider?: string | null;
  date?: string | null;
  state?: string | null;
  kind?: DiscrepancyKind | null;
  /** Id cursor: rows older than this one (newest first). */
  before?: string | null;
  limit: number;
}

interface RepairOutcome {
  /** Whether the repair changed anything here (the day is then matched again). */
  changed: boolean;
  note: string;
}

const IN_CHUNK = 500;

/**
 * Reconciling a provider's day: fetch its bill (the adapter's `fetchBill`, which refuses a bad or partial file),
 * match it with the payments and refunds recorded here, repair what a provider query confirms, and keep the report
 * and its discrepancies.
 *
 * Nothing changes on the word of a bill alone. A payment the bill says was collected but is unknown or unpaid here
 * (MISSING_LOCALLY) is queried at the provider; only a confirmed success goes in, through
 * `PaymentsService.applyPaymentResult` (the order becomes PAID, or the money is refunded automatically when the
 * order is gone). A refund still PENDING here is followed up through `PaymentsService.checkRefund`. Amount
 * mismatches, payments missing at the provider and states the normal path cannot reach stay open for an admin, who
 * may accept them with a note.
 */
export class ReconciliationService {
  private readonly leaseMs: number;
  private readonly waitMs: number;

  constructor(
    private readonly orm: Orm,
    private readonly registry: ProviderRegistry,
    private readonly payments: PaymentsService,
    private readonly log: Logger,
    settings: ReconciliationSettings = {},
  ) {
    this.leaseMs = settings.leaseMs ?? 10 * 60_000;
    this.waitMs = settings.waitMs ?? 60_000;
  }

  /** The providers of a merchant that can serve bills (those a scheduled run covers). */
  billingProviders(merchantId = DEFAULT_MERCHANT_ID): ProviderName[] {
    return RECONCILABLE_PROVIDERS.filter((name) => typeof this.registry.byName(merchantId, name)?.fetchBill === 'function');
  }

  /**
   * Reconciles one provider's China day. A bill that cannot be fetched or trusted answers PAYMENT_PROVIDER_ERROR with
   * the reason and writes nothing. With a run of the same day in progress elsewhere, a manual run waits for it and
   * answers its report; a scheduled one (`notRunSince`) answers null.
   */
  async reconcile(provider: string, date: string, options: ReconcileOptions): Promise<ReconciliationReport | null> {
    const merchantId = options.merchantId ?? DEFAULT_MERCHANT_ID;
    assertProvider(provider);
    assertDay(date);
    const adapter = this.registry.byName(merchantId, provider);
    if (!adapter?.fetchBill) throw badInput(`${provider} is not configured for this merchant, or cannot provide bills`);

    const bill = await this.fetchBill(adapter, date);
    const reportId = await this.claim(merchantId, provider, date, options.notRunSince);
    if (!reportId) return options.notRunSince ? null : this.waitForOtherRun(merchantId, provider, date);
    try {
      await this.run(reportId, merchantId, adapter, bill, options.actor);
    } finally {
      await this.orm.em.fork().createQueryBuilder(ReconciliationReport).update({ leaseUntil: null }).where({ id: reportId }).execute('run');
    }
    return this.orm.em.fork().findOneOrFail(ReconciliationReport, { id: reportId });
  }

  private async fetchBill(adapter: PaymentProvider, date: string): Promise<Bill> {
    try {
      return await adapter.fetchBill!({ date });
    } catch (err) {
      if (err instanceof BillFormatError) {
        this.log.error({ provider: adapter.name, date, reason: err.reason, err: err.message }, 'bill refused; nothing changed');
        throw new DomainError(ErrorCode.PAYMENT_PROVIDER_ERROR, `The ${adapter.name} bill for ${date} was refused and nothing was changed (${err.reason}): ${err.detail}`, {
          billError: err.reason,
        });
      }
      if (err instanceof ProviderError) {
        this.log.warn({ provider: adapter.name, date, err: err.message }, 'bill could not be fetched');
        const [billError, why] =
          err instanceof ProviderRejectedError
            ? ['REFUSED', `the provider refused (${err.providerCode})`]
            : err instanceof ProviderSignatureError
              ? ['BAD_SIGNATURE', 'its answer failed signature verification']
              : ['UNREACHABLE', 'the provider could not be reached'];
        throw new DomainError(ErrorCode.PAYMENT_PROVIDER_ERROR, `The ${adapter.name} bill for ${date} could not be fetched: ${why}; nothing was changed`, {
          billError,
        });
      }
      throw err;
    }
  }

  private async run(reportId: string, merchantId: string, adapter: PaymentProvider, bill: Bill, actor: string): Promise<void> {
    const day = chinaDayRange(bill.date);
    const first = matchBill(bill, await this.loadLocal(merchantId, adapter.name, bill, day), day);
    const notes = new Map<string, string>();
    let changed = false;
    for (const d of first.discrepancies) {
      const outcome = await this.repair(merchantId, d).catch((err): RepairOutcome => {
        this.log.warn({ subject: d.subject, err: (err as Error).message }, 'reconciliation repair failed; the discrepancy stays open');
        return { changed: false, note: `the provider query failed (${err instanceof ProviderError ? err.name : 'error'}); nothing changed, try again later` };
      });
      if (!outcome) continue;
      notes.set(d.subject, outcome.note);
      changed ||= outcome.changed;
    }
    let finalBill = bill;
    let final = first;
    if (changed) {
      // A repair can add money movements to the day (an automatic refund of a payment whose order is gone): read the
      // day again from both sides. Should the second download fail, the first bill stands.
      finalBill = await adapter.fetchBill!({ date: bill.date }).catch(() => bill);
      final = matchBill(finalBill, await this.loadLocal(merchantId, adapter.name, finalBill, day), day);
    }
    await this.persist(reportId, finalBill, first, final, notes, actor);
    const stillOpen = new Set(final.discrepancies.map((d) => d.subject));
    this.log.info(
      {
        provider: adapter.name,
        date: bill.date,
        matched: final.matchedCount,
        discrepancies: stillOpen.size,
        repaired: first.discrepancies.filter((d) => !stillOpen.has(d.subject)).length,
        totalsMatch: final.totalsMatch,
      },
      'reconciled',
    );
  }

  // ─── local side ───────────────────────────────────────────────────────────────────────────────────────────────

  /** Every local payment and refund a bill row names (any day), plus every local success of the day. */
  private async loadLocal(merchantId: string, provider: string, bill: Bill, day: { start: Date; end: Date }): Promise<LocalBook> {
    const em = this.orm.em.fork();
    const channels = (Object.keys(CHANNEL_PROVIDER) as PaymentChannel[]).filter((c) => CHANNEL_PROVIDER[c] === provider);
    const paymentNos = [...new Set(bill.rows.filter((r) => r.kind === 'payment' && r.paymentNo).map((r) => r.paymentNo))];
    const refundNos = [...new Set(bill.rows.filter((r) => r.kind === 'refund' && r.refundNo).map((r) => r.refundNo!))];

    const payments = new Map<string, Payment>();
    for (const chunk of chunks(paymentNos)) {
      for (const p of await em.find(Payment, { merchantId, paymentNo: { $in: chunk } })) payments.set(p.id, p);
    }
    const ofDay = await em.find(Payment, {
      merchantId,
      channel: { $in: channels },
      status: PaymentStatus.SUCCEEDED,
      paidAt: { $gte: day.start, $lt: day.end },
    });
    for (const p of ofDay) payments.set(p.id, p);

    const refunds = new Map<string, Refund>();
    for (const chunk of chunks(refundNos)) {
      for (const r of await em.find(Refund, { merchantId, refundNo: { $in: chunk } })) refunds.set(r.id, r);
    }
    for (const r of await em.find(Refund, { merchantId, status: RefundStatus.SUCCEEDED, completedAt: { $gte: day.start, $lt: day.end } })) {
      refunds.set(r.id, r);
    }
    const refundPayments = new Map<string, Payment>();
    const missing = [...new Set([...refunds.values()].map((r) => r.paymentId))].filter((id) => !payments.has(id));
    for (const chunk of chunks(missing)) {
      for (const p of await em.find(Payment, { id: { $in: chunk } })) refundPayments.set(p.id, p);
    }
    const paymentOf = (id: string) => payments.get(id) ?? refundPayments.get(id);
    const named = new Set(refundNos);

    return {
      payments: [...payments.values()].map((p) => ({
        paymentNo: p.paymentNo,
        amount: p.amount,
        status: p.status,
        providerTransactionId: p.providerTransactionId,
        at: p.paidAt,
      })),
      refunds: [...refunds.values()]
        .filter((r) => named.has(r.refundNo) || channels.includes(paymentOf(r.paymentId)?.channel as PaymentChannel))
        .map((r) => ({ refundNo: r.refundNo, paymentNo: paymentOf(r.paymentId)?.paymentNo ?? '', amount: r.amount, status: r.status, at: r.completedAt })),
    };
  }

  // ─── repair ───────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Settles one discrepancy through the normal payment path when a provider query confirms what the bill says.
   * Null when there is no such path (amounts, payments missing at the provider, a success here the provider denies).
   */
  private async repair(merchantId: string, d: FoundDiscrepancy): Promise<RepairOutcome | null> {
    if (d.kind !== DiscrepancyKind.MISSING_LOCALLY && d.kind !== DiscrepancyKind.STATUS_MISMATCH) return null;
    return d.rowKind === 'payment' ? this.repairPayment(merchantId, d) : this.repairRefund(merchantId, d);
  }

  private async repairPayment(merchantId: string, d: FoundDiscrepancy): Promise<RepairOutcome | null> {
    const em = this.orm.em.fork();
    const p = d.paymentNo ? await em.findOne(Payment, { merchantId, paymentNo: d.paymentNo }) : null;
    if (!p) {
      return { changed: false, note: 'no payment with this number here, so nothing to apply it to; look it up in the provider console' };
    }
    if (p.status === PaymentStatus.SUCCEEDED) return null;
    const provider = this.payments.providerFor(p);
    const q = await provider.queryPayment({ channel: p.channel, paymentNo: p.paymentNo, providerReference: p.providerReference });
    if (q.state === 'SUCCEEDED') {
      if (q.amount !== undefined && q.amount !== p.amount) {
        return { changed: false, note: `a provider query says SUCCEEDED for ${q.amount}, not ${p.amount}: not applied` };
      }
      await this.payments.applyPaymentResult(
        p.paymentNo,
        { status: 'SUCCEEDED', providerTransactionId: q.providerTransactionId, paidAt: q.paidAt, raw: q.raw },
        RECONCILIATION_ACTOR,
      );
    } else if ((q.state === 'CLOSED' || q.state === 'FAILED') && p.status === PaymentStatus.PENDING) {
      await this.payments.applyPaymentResult(p.paymentNo, { status: q.state, raw: q.raw, reason: `provider says ${q.state}` }, RECONCILIATION_ACTOR);
    } else {
      return { changed: false, note: `a provider query says ${q.state}, which does not confirm the bill: nothing changed` };
    }
    const after = await this.orm.em.fork().findOneOrFail(Payment, { id: p.id });
    if (after.status === p.status) return { changed: false, note: `a provider query says ${q.state}, but nothing could be applied` };
    return { changed: true, note: await this.describePayment(after, q.state) };
  }

  private async describePayment(p: Payment, state: string): Promise<string> {
    const em = this.orm.em.fork();
    if (p.status !== PaymentStatus.SUCCEEDED) return `a provider query says ${state}: applied, the payment is ${p.status}`;
    const order = await em.findOneOrFail(Order, { id: p.orderId });
    if (order.paidPaymentId === p.id) return `confirmed by a provider query and applied: the order ${order.orderNo} is ${order.status}`;
    const refund = await em.findOne(Refund, { paymentId: p.id }, { orderBy: { id: 'desc' } });
    return `confirmed by a provider query; its order ${order.orderNo} could no longer take it (${order.status}), so it is refunded automatically${refund ? ` (refund ${refund.refundNo})` : ''}`;
  }

  private async repairRefund(merchantId: string, d: FoundDiscrepancy): Promise<RepairOutcome | null> {
    const em = this.orm.em.fork();
    const r = d.refundNo ? await em.findOne(Refund, { merchantId, refundNo: d.refundNo }) : null;
    if (!r) return { changed: false, note: 'no refund with this number here, so nothing to apply it to; look it up in the provider console' };
    if (r.status !== RefundStatus.PENDING) {
      if (r.status === RefundStatus.FAILED && d.kind === DiscrepancyKind.MISSING_LOCALLY) {
        return { changed: false, note: 'the refund FAILED here but the provider lists it as refunded: no automatic repair, check it at the provider' };
      }
      return null;
    }
    await this.payments.checkRefund(r.id);
    const after = await this.orm.em.fork().findOneOrFail(Refund, { id: r.id });
    if (after.status === RefundStatus.PENDING) return { changed: false, note: 'a provider query does not confirm it yet (still pending): nothing changed' };
    return { changed: true, note: `a provider query says ${after.status}: applied` };
  }

  // ─── persistence ──────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Claims the day for this run: the report row is inserted (unique per merchant, provider and day) or its lease
   * taken with a conditional update. Null when another run holds it (or, with `notRunSince`, already ran).
   */
  private async claim(merchantId: string, provider: string, date: string, notRunSince?: Date): Promise<string | null> {
    const now = new Date();
    const leaseUntil = new Date(now.getTime() + this.leaseMs);
    let report = await this.orm.em.fork().findOne(ReconciliationReport, { merchantId, provider, date });
    if (!report) {
      const em = this.orm.em.fork();
      try {
        const created = em.create(ReconciliationReport, { merchantId, provider, date, leaseUntil });
        await em.flush();
        return created.id;
      } catch (err) {
        if (!(err instanceof UniqueConstraintViolationException)) throw err;
        report = await this.orm.em.fork().findOneOrFail(ReconciliationReport, { merchantId, provider, date });
      }
    }
    const free = { $or: [{ leaseUntil: null }, { leaseUntil: { $lt: now } }] };
    const notYet = notRunSince ? { $or: [{ lastRunAt: null }, { lastRunAt: { $lt: notRunSince } }] } : {};
    const claimed = await this.orm.em
      .fork()
      .createQueryBuilder(ReconciliationReport)
      .update({ leaseUntil })
      .where({ $and: [{ id: report.id }, free, notYet] })
      .execute('run');
    return claimed.affectedRows ? report.id : null;
  }

  private async waitForOtherRun(merchantId: string, provider: string, date: string): Promise<ReconciliationReport> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const report = await this.orm.em.fork().findOneOrFail(ReconciliationReport, { merchantId, provider, date });
      if (!report.leaseUntil || report.leaseUntil < new Date()) return report;
      if (Date.now() > deadline) {
        throw new DomainError(ErrorCode.INVALID_TRANSITION, `${provider} ${date} is being reconciled by another run right now; try again in a few minutes`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async persist(reportId: string, bill: Bill, first: MatchResult, final: MatchResult, notes: Map<string, string>, actor: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.orm.em.fork().transactional(async (tx) => {
          const now = new Date();
          const report = await tx.findOneOrFail(ReconciliationReport, { id: reportId });
          Object.assign(report, {
            matchedCount: final.matchedCount,
            providerRowCount: bill.rows.length,
            providerPaymentCount: final.provider.paymentCount,
            providerPaymentAmount: final.provider.paymentAmount,
            providerRefundCount: final.provider.refundCount,
            providerRefundAmount: final.provider.refundAmount,
            providerTotalAmount: final.provider.paymentAmount - final.provider.refundAmount,
            localPaymentCount: final.local.paymentCount,
            localPaymentAmount: final.local.paymentAmount,
            localRefundCount: final.local.refundCount,
            localRefundAmount: final.local.refundAmount,
            localTotalAmount: final.local.paymentAmount - final.local.refundAmount,
            totalsMatch: final.totalsMatch,
            runs: report.runs + 1,
            lastRunAt: now,
            lastRunBy: actor.slice(0, 100),
          });
          const existing = new Map((await tx.find(Discrepancy, { reportId })).map((d) => [d.subject, d]));
          const stillFound = new Set(final.discrepancies.map((d) => d.subject));
          const resolve = (row: Discrepancy, note: string) => {
            row.state = 'repaired';
            row.note = note.slice(0, 500);
            row.resolvedBy = RECONCILIATION_ACTOR;
            row.resolvedAt = now;
          };

          for (const d of final.discrepancies) {
            const row = existing.get(d.subject);
            const note = notes.get(d.subject);
            if (!row) {
              tx.create(Discrepancy, { ...facts(d), merchantId: report.merchantId, reportId, provider: report.provider, date: report.date, note: note?.slice(0, 500) ?? null });
            } else {
              Object.assign(row, facts(d));
              if (row.state !== 'accepted') {
                row.state = 'open';
                row.resolvedBy = null;
                row.resolvedAt = null;
                if (note) row.note = note.slice(0, 500);
              }
            }
          }
          for (const d of first.discrepancies) {
            if (stillFound.has(d.subject)) continue;
            const note = notes.get(d.subject) ?? 'settled while this run was repairing';
            const row = existing.get(d.subject);
            if (!row) {
              const created = tx.create(Discrepancy, { ...facts(d), merchantId: report.merchantId, reportId, provider: report.provider, date: report.date });
              resolve(created, note);
            } else if (row.state !== 'accepted') {
              resolve(row, note);
            }
          }
          const repairedNow = new Set(first.discrepancies.map((d) => d.subject));
          for (const row of existing.values()) {
            if (row.state === 'open' && !stillFound.has(row.subject) && !repairedNow.has(row.subject)) {
              resolve(row, 'no longer found when the day was reconciled again');
            }
          }
        });
        return;
      } catch (err) {
        // An admin accepted one of this report's discrepancies meanwhile: apply the run again on fresh rows.
        if (!(err instanceof OptimisticLockError) || attempt >= 3) throw err;
      }
    }
  }

  // ─── queries for the API ──────────────────────────────────────────────────────────────────────────────────────

  async report(provider: string, date: string, merchantId = DEFAULT_MERCHANT_ID): Promise<ReconciliationReport | null> {
    assertProvider(provider);
    if (!isDate(date)) throw badInput('date must be YYYY-MM-DD');
    return this.orm.em.fork().findOne(ReconciliationReport, { merchantId, provider, date });
  }

  async discrepanciesOf(reportId: string): Promise<Discrepancy[]> {
    return this.orm.em.fork().find(Discrepancy, { reportId }, { orderBy: { id: 'asc' } });
  }

  /** Newest first; `limit + 1` rows are read so the caller knows whether there are more. */
  async listDiscrepancies(filter: DiscrepancyFilter): Promise<Discrepancy[]> {
    const where: Record<string, unknown> = { merchantId: filter.merchantId ?? DEFAULT_MERCHANT_ID };
    if (filter.provider) {
      assertProvider(filter.provider);
      where.provider = filter.provider;
    }
    if (filter.date) {
      if (!isDate(filter.date)) throw badInput('date must be YYYY-MM-DD');
      where.date = filter.date;
    }
    if (filter.state) {
      if (!DISCREPANCY_STATES.includes(filter.state as DiscrepancyState)) throw badInput(`state must be one of ${DISCREPANCY_STATES.join(', ')}`);
      where.state = filter.state;
    }
    if (filter.kind) where.kind = filter.kind;
    if (filter.before) {
      if (!isId(filter.before)) throw badInput('after is not a cursor from this list');
      where.id = { $lt: filter.before };
    }
    return this.orm.em.fork().find(Discrepancy, where, { orderBy: { id: 'desc' }, limit: filter.limit + 1 });
  }

  /** An admin's decision on an open discrepancy: accepted as it is, with a note saying why. */
  async accept(id: string, note: string, actor: string, merchantId = DEFAULT_MERCHANT_ID): Promise<Discrepancy> {
    const text = note.trim();
    if (text.length < 1 || text.length > 500) throw badInput('note must be 1 to 500 characters');
    const em = this.orm.em.fork();
    const d = isId(id) ? await em.findOne(Discrepancy, { id, merchantId }) : null;
    if (!d) throw notFound('Discrepancy');
    if (d.state !== 'open') throw new DomainError(ErrorCode.INVALID_TRANSITION, `This discrepancy is ${d.state}; only open ones can be accepted`);
    d.state = 'accepted';
    d.note = text;
    d.resolvedBy = actor.slice(0, 100);
    d.resolvedAt = new Date();
    try {
      await em.flush();
    } catch (err) {
      if (err instanceof OptimisticLockError) {
        throw new DomainError(ErrorCode.INVALID_TRANSITION, 'This discrepancy changed meanwhile (a reconciliation run); reload it and try again');
      }
      throw err;
    }
    return d;
  }
}

function facts(d: FoundDiscrepancy) {
  return {
    subject: d.subject,
    kind: d.kind,
    paymentNo: d.paymentNo?.slice(0, 64) ?? null,
    refundNo: d.refundNo?.slice(0, 64) ?? null,
    providerTransactionId: d.providerTransactionId?.slice(0, 64) ?? null,
    localAmount: d.localAmount,
    providerAmount: d.providerAmount,
    localStatus: d.localStatus,
    providerStatus: d.providerStatus?.slice(0, 40) ?? null,
  };
}

function assertProvider(provider: string): asserts provider is ProviderName {
  if (!(RECONCILABLE_PROVIDERS as readonly string[]).includes(provider)) {
    throw badInput(`provider must be one of ${RECONCILABLE_PROVIDERS.join(', ')}`);
  }
}

/** A real date, not after today in China (a bill exists at the earliest for the day in progress). */
function assertDay(date: string): void {
  if (!isDate(date)) throw badInput('date must be a YYYY-MM-DD calendar date (China day)');
  if (date > chinaDate()) throw badInput(`${date} is in the future (China time); there is no bill for it yet`);
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += IN_CHUNK) out.push(items.slice(i, i + IN_CHUNK));
  return out;
}
