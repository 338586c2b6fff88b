/**
 * Matching a provider's bill with what the service recorded: a pure function, no I/O.
 *
 * Every bill row is looked up by its merchant number (a payment's `paymentNo`, a refund's `refundNo`), whatever day
 * the local record is from. Then every local success of the day (payments by `paidAt`, refunds by `completedAt`,
 * China day) that no row named is missing at the provider. The kinds:
 *
 * | provider row                  | local record                               | kind                  |
 * |-------------------------------|--------------------------------------------|-----------------------|
 * | SUCCEEDED                     | none, or not SUCCEEDED (unpaid, closed…)   | MISSING_LOCALLY       |
 * | not SUCCEEDED (revoked, …)    | in another state                           | STATUS_MISMATCH       |
 * | same state                    | SUCCEEDED with another amount              | AMOUNT_MISMATCH       |
 * | none                          | SUCCEEDED on that day                      | MISSING_AT_PROVIDER   |
 * | same state (and amount)       | same state                                 | matched               |
 *
 * A non-successful row for a number unknown here moved no money and is ignored. Rows naming the same number twice are
 * added up (a bill cannot collect one payment twice; the sum then shows as an amount mismatch).
 */
import type { Bill, BillRow, BillRowKind, BillTotals } from './bill';

export enum DiscrepancyKind {
  MISSING_LOCALLY = 'MISSING_LOCALLY',
  MISSING_AT_PROVIDER = 'MISSING_AT_PROVIDER',
  AMOUNT_MISMATCH = 'AMOUNT_MISMATCH',
  STATUS_MISMATCH = 'STATUS_MISMATCH',
}

export type LocalPaymentStatus = 'PENDING' | 'SUCCEEDED' | 'FAILED' | 'CLOSED';
export type LocalRefundStatus = 'PENDING' | 'SUCCEEDED' | 'FAILED';

export interface LocalPayment {
  paymentNo: string;
  amount: number;
  status: LocalPaymentStatus;
  providerTransactionId?: string | null;
  /** When it succeeded (`paidAt`). */
  at?: Date | null;
}

export interface LocalRefund {
  refundNo: string;
  paymentNo: string;
  amount: number;
  status: LocalRefundStatus;
  /** When it ended (`completedAt`). */
  at?: Date | null;
}

/** Every local record a bill row names, plus every local success of the day (the caller loads both). */
export interface LocalBook {
  payments: readonly LocalPayment[];
  refunds: readonly LocalRefund[];
}

export interface FoundDiscrepancy {
  kind: DiscrepancyKind;
  /** What it is about: `payment:<paymentNo>` or `refund:<refundNo>`; stable across runs of the same day. */
  subject: string;
  rowKind: BillRowKind;
  paymentNo: string | null;
  refundNo: string | null;
  providerTransactionId: string | null;
  localAmount: number | null;
  providerAmount: number | null;
  localStatus: string | null;
  providerStatus: string | null;
}

export interface MatchResult {
  matchedCount: number;
  discrepancies: FoundDiscrepancy[];
  provider: BillTotals;
  local: BillTotals;
  /** Both sides collected and refunded the same counts and amounts that day. */
  totalsMatch: boolean;
}

export function subjectOf(kind: BillRowKind, paymentNo: string | null | undefined, refundNo?: string | null, fallback?: string | null): string {
  if (kind === 'refund') return `refund:${refundNo || fallback || '?'}`;
  return `payment:${paymentNo || fallback || '?'}`;
}

export function matchBill(bill: Bill, local: LocalBook, day: { start: Date; end: Date }): MatchResult {
  const payments = new Map(local.payments.map((p) => [p.paymentNo, p]));
  const refunds = new Map(local.refunds.map((r) => [r.refundNo, r]));
  const discrepancies: FoundDiscrepancy[] = [];
  const named = new Set<string>();
  let matchedCount = 0;

  for (const row of mergeRows(bill.rows)) {
    const subject = subjectOf(row.kind, row.paymentNo, row.refundNo, row.providerTransactionId);
    named.add(subject);
    const mine = row.kind === 'payment' ? payments.get(row.paymentNo) : row.refundNo ? refunds.get(row.refundNo) : undefined;
    const found = (kind: DiscrepancyKind): FoundDiscrepancy => ({
      kind,
      subject,
      rowKind: row.kind,
      paymentNo: row.paymentNo || mine?.paymentNo || null,
      refundNo: row.kind === 'refund' ? (row.refundNo ?? null) : null,
      providerTransactionId: row.providerTransactionId ?? null,
      localAmount: mine?.amount ?? null,
      providerAmount: row.amount,
      localStatus: mine?.status ?? null,
      providerStatus: row.providerStatus,
    });
    if (!mine) {
      if (row.status === 'SUCCEEDED') discrepancies.push(found(DiscrepancyKind.MISSING_LOCALLY));
      continue;
    }
    if (mine.status !== row.status) {
      discrepancies.push(found(row.status === 'SUCCEEDED' ? DiscrepancyKind.MISSING_LOCALLY : DiscrepancyKind.STATUS_MISMATCH));
    } else if (row.status === 'SUCCEEDED' && mine.amount !== row.amount) {
      discrepancies.push(found(DiscrepancyKind.AMOUNT_MISMATCH));
    } else {
      matchedCount++;
    }
  }

  const inDay = (at: Date | null | undefined) => !!at && at >= day.start && at < day.end;
  const localTotals: BillTotals = { paymentCount: 0, paymentAmount: 0, refundCount: 0, refundAmount: 0 };
  for (const p of local.payments) {
    if (p.status !== 'SUCCEEDED' || !inDay(p.at)) continue;
    localTotals.paymentCount++;
    localTotals.paymentAmount += p.amount;
    const subject = subjectOf('payment', p.paymentNo);
    if (!named.has(subject)) discrepancies.push(missingAtProvider(subject, 'payment', p.paymentNo, null, p.amount, p.status, p.providerTransactionId));
  }
  for (const r of local.refunds) {
    if (r.status !== 'SUCCEEDED' || !inDay(r.at)) continue;
    localTotals.refundCount++;
    localTotals.refundAmount += r.amount;
    const subject = subjectOf('refund', r.paymentNo, r.refundNo);
    if (!named.has(subject)) discrepancies.push(missingAtProvider(subject, 'refund', r.paymentNo, r.refundNo, r.amount, r.status, null));
  }

  const provider = bill.totals;
  const totalsMatch =
    provider.paymentCount === localTotals.paymentCount &&
    provider.paymentAmount === localTotals.paymentAmount &&
    provider.refundCount === localTotals.refundCount &&
    provider.refundAmount === localTotals.refundAmount;
  return { matchedCount, discrepancies, provider, local: localTotals, totalsMatch };
}

function missingAtProvider(
  subject: string,
  rowKind: BillRowKind,
  paymentNo: string,
  refundNo: string | null,
  amount: number,
  status: string,
  providerTransactionId: string | null | undefined,
): FoundDiscrepancy {
  return {
    kind: DiscrepancyKind.MISSING_AT_PROVIDER,
    subject,
    rowKind,
    paymentNo,
    refundNo,
    providerTransactionId: providerTransactionId ?? null,
    localAmount: amount,
    providerAmount: null,
    localStatus: status,
    providerStatus: null,
  };
}

/** Rows naming the same payment or refund, added up into one (the last row's state wins). */
function mergeRows(rows: readonly BillRow[]): BillRow[] {
  const bySubject = new Map<string, BillRow>();
  for (const row of rows) {
    const subject = subjectOf(row.kind, row.paymentNo, row.refundNo, row.providerTransactionId);
    const seen = bySubject.get(subject);
    bySubject.set(subject, seen ? { ...row, amount: seen.amount + row.amount } : row);
  }
  return [...bySubject.values()];
}

