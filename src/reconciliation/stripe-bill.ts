/**
 * Stripe has no bill file: the day's bill is the list of balance transactions created in it
 * (`GET /v1/balance_transactions?created[gte]=…&created[lt]=…&expand[]=data.source&expand[]=data.source.payment_intent`).
 *
 * - `type: charge` (or `payment`): money collected; its `source` is the charge, whose `metadata.paymentNo` (copied
 *   from the PaymentIntent) or, failing that, the expanded `payment_intent.metadata.paymentNo` names the payment.
 * - `type: refund` (or `payment_refund`): money given back; `source` is the refund, `metadata.refundNo` /
 *   `metadata.paymentNo` written by the adapter. Its state is the refund's current `status`.
 * - `refund_failure` (a failed refund's money coming back), fees, payouts, adjustments: not payments or refunds of
 *   this service, skipped. A failed refund already reads `failed` on its own `refund` transaction.
 *
 * Amounts are the transaction's `amount` (gross, smallest currency unit; negative for refunds), not `net`.
 * A list that does not look like Stripe's (no integer amount, an unexpanded source) is refused.
 */
import { BillFormatError, chinaDate, makeBill, type Bill, type BillRow, type BillRowStatus } from './bill';

const PROVIDER = 'stripe';
const PAYMENT_TYPES = new Set(['charge', 'payment']);
const REFUND_TYPES = new Set(['refund', 'payment_refund']);

const REFUND_STATUS: Readonly<Record<string, BillRowStatus>> = {
  succeeded: 'SUCCEEDED',
  pending: 'PENDING',
  requires_action: 'PENDING',
  failed: 'FAILED',
  canceled: 'FAILED',
};

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const metadata = (o: unknown, key: string): string | undefined => (isObj(o) && isObj(o.metadata) ? str(o.metadata[key]) : undefined);

export interface StripeBillOptions {
  /** The China day the transactions were listed for: each must have been created in it. */
  date: string;
}

export function stripeBillFromBalanceTransactions(transactions: readonly unknown[], options: StripeBillOptions): Bill {
  const rows: BillRow[] = [];
  transactions.forEach((t, i) => {
    if (!isObj(t) || t.object !== 'balance_transaction' || !str(t.id)) {
      throw new BillFormatError(PROVIDER, 'MALFORMED', `item ${i} is not a balance_transaction`);
    }
    const id = t.id as string;
    const type = str(t.type);
    if (!type) throw new BillFormatError(PROVIDER, 'UNEXPECTED_COLUMNS', `${id} has no type`);
    if (typeof t.amount !== 'number' || !Number.isSafeInteger(t.amount)) {
      throw new BillFormatError(PROVIDER, 'UNEXPECTED_COLUMNS', `${id} has no integer amount`);
    }
    if (typeof t.created !== 'number' || !Number.isSafeInteger(t.created)) {
      throw new BillFormatError(PROVIDER, 'UNEXPECTED_COLUMNS', `${id} has no created time`);
    }
    const at = new Date(t.created * 1000);
    if (chinaDate(at) !== options.date) throw new BillFormatError(PROVIDER, 'WRONG_DAY', `${id} was created on ${at.toISOString()}, outside ${options.date}`);
    if (!PAYMENT_TYPES.has(type) && !REFUND_TYPES.has(type)) return;

    const source = t.source;
    if (!isObj(source)) throw new BillFormatError(PROVIDER, 'UNEXPECTED_COLUMNS', `${id}: source is not expanded (expand[]=data.source)`);
    const intent = source.payment_intent;
    if (PAYMENT_TYPES.has(type)) {
      if (t.amount < 0) throw new BillFormatError(PROVIDER, 'MALFORMED', `${id}: a ${type} with a negative amount`);
      rows.push({
        kind: 'payment',
        paymentNo: metadata(source, 'paymentNo') ?? metadata(intent, 'paymentNo') ?? '',
        providerTransactionId: str(source.id),
        amount: t.amount,
        status: source.status === 'succeeded' ? 'SUCCEEDED' : source.status === 'pending' ? 'PENDING' : 'FAILED',
        providerStatus: `charge/${String(source.status)}`,
        at,
      });
    } else {
      if (t.amount > 0) throw new BillFormatError(PROVIDER, 'MALFORMED', `${id}: a ${type} with a positive amount`);
      const status = REFUND_STATUS[String(source.status)];
      if (!status) throw new BillFormatError(PROVIDER, 'MALFORMED', `${id}: refund ${String(source.id)} has unknown status ${String(source.status)}`);
      const refundNo = metadata(source, 'refundNo');
      rows.push({
        kind: 'refund',
        paymentNo: metadata(source, 'paymentNo') ?? metadata(intent, 'paymentNo') ?? '',
        // A refund made in the Dashboard has no refundNo: its id stands in, so it is still reported.
        refundNo: refundNo ?? str(source.id) ?? id,
        providerTransactionId: str(source.id),
        amount: -t.amount,
        status,
        providerStatus: `refund/${String(source.status)}`,
        at,
      });
    }
  });
  return makeBill(PROVIDER, options.date, rows);
}
