import { describe, expect, it } from 'vitest';
import { chinaDayRange, makeBill, type BillRow } from '../../src/reconciliation/bill';
import { DiscrepancyKind, matchBill, type LocalPayment, type LocalRefund } from '../../src/reconciliation/matcher';

const DAY = '2026-11-25';
const range = chinaDayRange(DAY);
const at = (hhmm: string, date = DAY) => new Date(`${date}T${hhmm}:00+08:00`);

const paymentRow = (paymentNo: string, amount: number, extra: Partial<BillRow> = {}): BillRow => ({
  kind: 'payment',
  paymentNo,
  providerTransactionId: `T-${paymentNo}`,
  amount,
  status: 'SUCCEEDED',
  providerStatus: 'SUCCESS',
  at: at('10:00'),
  ...extra,
});
const refundRow = (paymentNo: string, refundNo: string, amount: number, extra: Partial<BillRow> = {}): BillRow => ({
  kind: 'refund',
  paymentNo,
  refundNo,
  amount,
  status: 'SUCCEEDED',
  providerStatus: 'REFUND/SUCCESS',
  at: at('11:00'),
  ...extra,
});
const paid = (paymentNo: string, amount: number, extra: Partial<LocalPayment> = {}): LocalPayment => ({
  paymentNo,
  amount,
  status: 'SUCCEEDED',
  at: at('10:00'),
  ...extra,
});
const refunded = (paymentNo: string, refundNo: string, amount: number, extra: Partial<LocalRefund> = {}): LocalRefund => ({
  paymentNo,
  refundNo,
  amount,
  status: 'SUCCEEDED',
  at: at('11:00'),
  ...extra,
});

const match = (rows: BillRow[], payments: LocalPayment[], refunds: LocalRefund[] = []) =>
  matchBill(makeBill('wechatpay', DAY, rows), { payments, refunds }, range);

describe('matchBill', () => {
  it('matches every row and compares the totals of both sides', () => {
    const r = match(
      [paymentRow('P1', 100), paymentRow('P2', 250), refundRow('P1', 'R1', 40)],
      [paid('P1', 100), paid('P2', 250)],
      [refunded('P1', 'R1', 40)],
    );
    expect(r.matchedCount).toBe(3);
    expect(r.discrepancies).toEqual([]);
    expect(r.provider).toEqual({ paymentCount: 2, paymentAmount: 350, refundCount: 1, refundAmount: 40 });
    expect(r.local).toEqual(r.provider);
    expect(r.totalsMatch).toBe(true);
  });

  it('a success at the provider unknown here is MISSING_LOCALLY', () => {
    const r = match([paymentRow('P9', 500)], []);
    expect(r.discrepancies).toEqual([
      expect.objectContaining({ kind: DiscrepancyKind.MISSING_LOCALLY, subject: 'payment:P9', paymentNo: 'P9', providerAmount: 500, localAmount: null }),
    ]);
    expect(r.totalsMatch).toBe(false);
  });

  it('a success at the provider that is unpaid or closed here is MISSING_LOCALLY, with the local state', () => {
    const r = match([paymentRow('P1', 100), paymentRow('P2', 100)], [paid('P1', 100, { status: 'PENDING', at: null }), paid('P2', 100, { status: 'CLOSED', at: null })]);
    expect(r.discrepancies.map((d) => [d.kind, d.paymentNo, d.localStatus])).toEqual([
      [DiscrepancyKind.MISSING_LOCALLY, 'P1', 'PENDING'],
      [DiscrepancyKind.MISSING_LOCALLY, 'P2', 'CLOSED'],
    ]);
  });

  it('a local success of the day no row names is MISSING_AT_PROVIDER; one of another day is not', () => {
    const r = match([], [paid('P1', 100), paid('P0', 100, { at: at('23:59', '2026-11-24') })], [refunded('P1', 'R1', 10)]);
    expect(r.discrepancies.map((d) => [d.kind, d.subject, d.localAmount])).toEqual([
      [DiscrepancyKind.MISSING_AT_PROVIDER, 'payment:P1', 100],
      [DiscrepancyKind.MISSING_AT_PROVIDER, 'refund:R1', 10],
    ]);
    expect(r.local).toEqual({ paymentCount: 1, paymentAmount: 100, refundCount: 1, refundAmount: 10 });
  });

  it('different amounts are AMOUNT_MISMATCH, with both amounts', () => {
    const r = match([paymentRow('P1', 90), refundRow('P1', 'R1', 50)], [paid('P1', 100)], [refunded('P1', 'R1', 40)]);
    expect(r.discrepancies.map((d) => [d.kind, d.subject, d.localAmount, d.providerAmount])).toEqual([
      [DiscrepancyKind.AMOUNT_MISMATCH, 'payment:P1', 100, 90],
      [DiscrepancyKind.AMOUNT_MISMATCH, 'refund:R1', 40, 50],
    ]);
  });

  it('a row the provider does not count as a success, against a local success, is STATUS_MISMATCH', () => {
    const r = match(
      [paymentRow('P1', 100, { status: 'CLOSED', providerStatus: 'REVOKED' }), refundRow('P2', 'R2', 30, { status: 'FAILED', providerStatus: 'REFUND/ABNORMAL' })],
      [paid('P1', 100), paid('P2', 30, { at: at('09:00', '2026-11-20') })],
      [refunded('P2', 'R2', 30)],
    );
    expect(r.discrepancies.map((d) => [d.kind, d.subject, d.localStatus, d.providerStatus])).toEqual([
      [DiscrepancyKind.STATUS_MISMATCH, 'payment:P1', 'SUCCEEDED', 'REVOKED'],
      [DiscrepancyKind.STATUS_MISMATCH, 'refund:R2', 'SUCCEEDED', 'REFUND/ABNORMAL'],
    ]);
  });

  it('a refund the provider lists as succeeded but is pending here is MISSING_LOCALLY; both pending is a match', () => {
    const r = match(
      [refundRow('P1', 'R1', 10), refundRow('P1', 'R2', 20, { status: 'PENDING', providerStatus: 'REFUND/PROCESSING' })],
      [],
      [refunded('P1', 'R1', 10, { status: 'PENDING', at: null }), refunded('P1', 'R2', 20, { status: 'PENDING', at: null })],
    );
    expect(r.discrepancies.map((d) => [d.kind, d.subject])).toEqual([[DiscrepancyKind.MISSING_LOCALLY, 'refund:R1']]);
    expect(r.matchedCount).toBe(1);
  });

  it('ignores a non-successful row unknown here (no money moved), and adds up rows naming the same payment', () => {
    const r = match([paymentRow('P8', 100, { status: 'CLOSED', providerStatus: 'REVOKED' }), paymentRow('P1', 100), paymentRow('P1', 100)], [paid('P1', 100)]);
    expect(r.discrepancies.map((d) => [d.kind, d.subject, d.providerAmount])).toEqual([[DiscrepancyKind.AMOUNT_MISMATCH, 'payment:P1', 200]]);
  });

  it('a matched payment of another local day still matches; the totals show the difference', () => {
    const r = match([paymentRow('P1', 100)], [paid('P1', 100, { at: at('23:59', '2026-11-24') })]);
    expect(r.discrepancies).toEqual([]);
    expect(r.matchedCount).toBe(1);
    expect(r.totalsMatch).toBe(false);
  });
});
