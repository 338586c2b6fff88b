/**
 * Discrepancies and corruptions a simulator can be told to put into the bills it serves, so reconciliation can be
 * tested against every way a provider's bill disagrees with the merchant or cannot be trusted. Bills are otherwise
 * exactly what the simulator processed.
 *
 * Row faults (each stays until `clear()`; they only change what the bill says, never the simulator's own state, so
 * a provider query still answers the truth):
 * - `extra_payment`: a successful payment line for `paymentNo` the simulator never collected (unknown here, or an
 *   unpaid payment's number: a bill row a provider query will not confirm);
 * - `drop_row`: the line of that payment (or, with `refundNo`, that refund) is left out;
 * - `amount`: that line says `amount` (minor units) instead;
 * - `status`: that line says `status` (default: the provider's word for a revoked payment / a failed refund).
 *
 * File corruptions (one at a time, until cleared): `hash` (the announced hash does not match), `truncate` (the
 * download is cut short), `columns` (an unexpected column layout), `encoding` (the wrong text encoding). A provider
 * whose bills cannot be corrupted a given way refuses it when told.
 */
export type BillDiscrepancy =
  | { kind: 'extra_payment'; paymentNo: string; amount: number; transactionId?: string; date?: string }
  | { kind: 'drop_row'; paymentNo: string; refundNo?: string }
  | { kind: 'amount'; paymentNo: string; refundNo?: string; amount: number }
  | { kind: 'status'; paymentNo: string; refundNo?: string; status?: string };

export type BillCorruption = 'hash' | 'truncate' | 'columns' | 'encoding';

export const BILL_CORRUPTIONS: readonly BillCorruption[] = ['hash', 'truncate', 'columns', 'encoding'];

/** The part of a simulator's bill line the faults look at and change. */
export interface FaultableLine {
  kind: 'payment' | 'refund';
  paymentNo: string;
  refundNo?: string;
  amount: number;
  /** The provider's own status word(s) for the line. */
  status: string;
}

export class BillFaults {
  private discrepancies: BillDiscrepancy[] = [];
  private corruption: BillCorruption | null = null;

  constructor(private readonly supportedCorruptions: readonly BillCorruption[] = BILL_CORRUPTIONS) {}

  inject(d: BillDiscrepancy): void {
    if (!d || typeof d.paymentNo !== 'string' || d.paymentNo === '') throw new Error('a bill discrepancy needs a paymentNo');
    if ((d.kind === 'extra_payment' || d.kind === 'amount') && !(Number.isSafeInteger(d.amount) && d.amount >= 0)) {
      throw new Error(`${d.kind} needs an amount in minor units`);
    }
    if (!['extra_payment', 'drop_row', 'amount', 'status'].includes(d.kind)) throw new Error(`unknown bill discrepancy ${String(d.kind)}`);
    this.discrepancies.push({ ...d });
  }

  corrupt(mode: BillCorruption | null): void {
    if (mode !== null && !this.supportedCorruptions.includes(mode)) {
      throw new Error(`this simulator's bills cannot be corrupted with '${mode}' (supported: ${this.supportedCorruptions.join(', ')})`);
    }
    this.corruption = mode;
  }

  clear(): void {
    this.discrepancies = [];
    this.corruption = null;
  }

  get corruptionMode(): BillCorruption | null {
    return this.corruption;
  }

  list(): { discrepancies: BillDiscrepancy[]; corruption: BillCorruption | null } {
    return { discrepancies: this.discrepancies.map((d) => ({ ...d })), corruption: this.corruption };
  }

  /**
   * The day's lines with the row faults applied: lines dropped or changed, extra payments (for `date`, default the
   * day of `today`) appended as `extra(d)` builds them. `failedStatus` gives the provider's word for a line made
   * unsuccessful when a `status` fault names none.
   */
  apply<L extends FaultableLine>(
    date: string,
    today: string,
    lines: L[],
    extra: (d: Extract<BillDiscrepancy, { kind: 'extra_payment' }>) => L,
    failedStatus: (line: L) => string,
  ): L[] {
    const hits = (line: L, d: { paymentNo: string; refundNo?: string }) =>
      d.refundNo ? line.kind === 'refund' && line.refundNo === d.refundNo : line.kind === 'payment' && line.paymentNo === d.paymentNo;
    let out = lines.map((l) => ({ ...l }));
    for (const d of this.discrepancies) {
      if (d.kind === 'extra_payment') {
        if ((d.date ?? today) === date) out.push(extra(d));
      } else if (d.kind === 'drop_row') {
        out = out.filter((l) => !hits(l, d));
      } else {
        for (const l of out) {
          if (!hits(l, d)) continue;
          if (d.kind === 'amount') l.amount = d.amount;
          else l.status = d.status ?? failedStatus(l);
        }
      }
    }
    return out;
  }
}

/** Parses the JSON body of a simulator's `POST /bill-faults`: `{ inject?, corrupt?, clear? }`. Throws on nonsense. */
export function applyBillFaultsRequest(faults: BillFaults, body: unknown): void {
  if (typeof body !== 'object' || body === null) throw new Error('expected JSON { inject?: {kind, paymentNo, …}, corrupt?: mode | null, clear?: true }');
  const b = body as Record<string, unknown>;
  if (b.clear === true) faults.clear();
  if (b.inject !== undefined) faults.inject(b.inject as BillDiscrepancy);
  if (b.corrupt !== undefined) faults.corrupt(b.corrupt as BillCorruption | null);
}
