/**
 * A provider's bill for one day, normalized: what every bill parser (`*-bill.ts`) produces and the matcher reads.
 *
 * Days are China calendar days (UTC+8) for every provider, Stripe included, so one date means the same 24 hours
 * everywhere in the service. Amounts are minor units (fen, cents), always positive: a row's `kind` says which way
 * the money went.
 */

export type BillRowKind = 'payment' | 'refund';

/**
 * A row's state as the provider states it, normalized. Payments: SUCCEEDED (collected), CLOSED (revoked / reversed).
 * Refunds: SUCCEEDED, PENDING (still processing), FAILED (abnormal, closed, failed).
 */
export type BillRowStatus = 'SUCCEEDED' | 'PENDING' | 'FAILED' | 'CLOSED';

export interface BillRow {
  kind: BillRowKind;
  /** The merchant order number (`out_trade_no`, `orderId`, Stripe `metadata.paymentNo`); `''` when the provider has none. */
  paymentNo: string;
  /** Refund rows: the merchant refund number (`out_refund_no`, `out_request_no`, Stripe `metadata.refundNo`). */
  refundNo?: string;
  /** The provider's own id for the transaction (WeChat `transaction_id`, Alipay `trade_no`, Stripe charge / refund id). */
  providerTransactionId?: string;
  /** Minor units, positive. */
  amount: number;
  status: BillRowStatus;
  /** The status words as the provider wrote them (`SUCCESS`, `REFUND/PROCESSING`, `succeeded`…), for people. */
  providerStatus: string;
  /** When the provider says it happened (payment success, refund time). */
  at: Date;
}

export interface BillTotals {
  /** SUCCEEDED payment rows. */
  paymentCount: number;
  paymentAmount: number;
  /** SUCCEEDED refund rows. */
  refundCount: number;
  refundAmount: number;
}

export interface Bill {
  provider: string;
  /** `YYYY-MM-DD`, a China calendar day. */
  date: string;
  rows: BillRow[];
  /** Derived from the rows, after the parser checked the rows against the provider's own summary lines. */
  totals: BillTotals;
}

/** Why a bill was refused. Every refusal stops the run before anything is written. */
export type BillFormatReason =
  | 'HASH_MISMATCH'
  | 'TRUNCATED'
  | 'UNEXPECTED_COLUMNS'
  | 'ENCODING'
  | 'TOTALS_MISMATCH'
  | 'WRONG_DAY'
  | 'MALFORMED';

/**
 * A bill that cannot be trusted: bad hash, truncated archive, unexpected columns, wrong encoding, rows that do not add
 * up to the provider's own summary. The message names the provider, the problem and where it was found.
 */
export class BillFormatError extends Error {
  constructor(
    readonly provider: string,
    readonly reason: BillFormatReason,
    /** What is wrong and where, without the provider and reason. */
    readonly detail: string,
  ) {
    super(`${provider} bill refused (${reason}): ${detail}`);
    this.name = 'BillFormatError';
  }
}

export function totalsOf(rows: readonly BillRow[]): BillTotals {
  const totals: BillTotals = { paymentCount: 0, paymentAmount: 0, refundCount: 0, refundAmount: 0 };
  for (const r of rows) {
    if (r.status !== 'SUCCEEDED') continue;
    if (r.kind === 'payment') {
      totals.paymentCount++;
      totals.paymentAmount += r.amount;
    } else {
      totals.refundCount++;
      totals.refundAmount += r.amount;
    }
  }
  return totals;
}

export function makeBill(provider: string, date: string, rows: BillRow[]): Bill {
  return { provider, date, rows, totals: totalsOf(rows) };
}

// ─── China calendar days ──────────────────────────────────────────────────────────────────────────────────────────

const CHINA_OFFSET_MS = 8 * 3600_000;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Whether `date` is a real `YYYY-MM-DD` calendar date. */
export function isDate(date: string): boolean {
  const m = DATE.exec(date);
  if (!m) return false;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!));
  return d.toISOString().slice(0, 10) === date;
}

/** The China calendar day an instant falls in, `YYYY-MM-DD`. */
export function chinaDate(at: Date = new Date()): string {
  return new Date(at.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 10);
}

/** `[start, end)` of a China calendar day as instants. */
export function chinaDayRange(date: string): { start: Date; end: Date } {
  if (!isDate(date)) throw new RangeError(`not a YYYY-MM-DD date: ${JSON.stringify(date)}`);
  const start = new Date(Date.parse(`${date}T00:00:00Z`) - CHINA_OFFSET_MS);
  return { start, end: new Date(start.getTime() + 86_400_000) };
}

/** The China day before `date`. */
export function previousDate(date: string): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
}

/** `yyyy-MM-dd HH:mm:ss` China time (WeChat, Alipay and UnionPay bills) → instant; undefined when malformed. */
export function parseChinaTime(text: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  const at = new Date(Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s!) - CHINA_OFFSET_MS);
  return new Date(at.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ') === text ? at : undefined;
}

// ─── decimal amounts ──────────────────────────────────────────────────────────────────────────────────────────────

/**
 * A yuan amount as bills write it (`0.01`, `-0.04`, `45.0`, `0.00000` for fees) → minor units, exactly (no floats).
 * More than two decimals are accepted only when the extra digits are zeros. Undefined when it is not such a number.
 */
export function parseYuan(text: string): number | undefined {
  const m = /^(-)?(\d{1,13})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) return undefined;
  const [, minus, whole, frac = ''] = m;
  if (/[^0]/.test(frac.slice(2))) return undefined;
  const fen = Number(whole) * 100 + Number(frac.slice(0, 2).padEnd(2, '0'));
  return minus ? -fen : fen;
}
