/**
 * Stripe's "bill" is the balance-transaction list. This is how the simulator lists it when told to disagree with
 * what it processed (`shared/bill-faults.ts`): lines dropped or changed, bill-only charges added, a status changed on
 * the expanded source, or (corruption `columns`) objects without their `amount`. The simulator's objects themselves
 * are never changed, so a PaymentIntent or refund retrieved directly still tells the truth.
 */
import { BillFaults, type FaultableLine } from '../shared/bill-faults';
import { stripeId } from './credentials';
import type { Account } from './store';
import type { WireBalanceTransaction } from './types';

interface TxnLine extends FaultableLine {
  txn: WireBalanceTransaction;
}

type Lookup = (account: Account, id: string) => object | undefined;

export class StripeBillView {
  readonly faults = new BillFaults(['columns']);
  /** Bill-only objects (charges of `extra_payment`), reachable through `expand` but not through the API. */
  private readonly phantoms = new Map<string, Record<string, unknown>>();
  private readonly extras = new Map<string, WireBalanceTransaction>();
  /** Source id → the status its expanded copy shows, for the list being answered. */
  private readonly statusOverrides = new Map<string, string>();

  constructor(
    private readonly lookup: Lookup,
    private readonly unix: () => number,
  ) {}

  /** A bill-only object by id (for `expand`). */
  phantom(id: string): object | undefined {
    return this.phantoms.get(id);
  }

  /** The account's balance transactions with the row faults applied, before filtering and pagination. */
  transactions(account: Account, all: readonly WireBalanceTransaction[]): WireBalanceTransaction[] {
    const lines: TxnLine[] = [];
    const others: WireBalanceTransaction[] = [];
    for (const txn of all) {
      if (txn.type !== 'charge' && txn.type !== 'refund') {
        others.push(txn);
        continue;
      }
      const source = this.lookup(account, String(txn.source)) as { status?: string; metadata?: Record<string, string>; payment_intent?: unknown } | undefined;
      const intent = typeof source?.payment_intent === 'string' ? (this.lookup(account, source.payment_intent) as { metadata?: Record<string, string> }) : undefined;
      lines.push({
        kind: txn.type === 'charge' ? 'payment' : 'refund',
        paymentNo: source?.metadata?.paymentNo ?? intent?.metadata?.paymentNo ?? '',
        refundNo: source?.metadata?.refundNo,
        amount: Math.abs(txn.amount),
        status: source?.status ?? '',
        txn,
      });
    }
    const today = new Date((this.unix() + 8 * 3600) * 1000).toISOString().slice(0, 10);
    const faulted = this.faults.apply(today, today, lines, (d) => ({
      kind: 'payment',
      paymentNo: d.paymentNo,
      amount: d.amount,
      status: 'succeeded',
      txn: this.extraPayment(account, d.paymentNo, d.amount, d.transactionId),
    }), () => 'failed');

    this.statusOverrides.clear();
    const out = [...others];
    for (const line of faulted) {
      const original = this.lookup(account, String(line.txn.source)) as { status?: string } | undefined;
      const source = String(line.txn.source);
      const status = original?.status ?? (this.phantoms.get(source)?.status as string | undefined);
      if (line.status !== status) this.statusOverrides.set(source, line.status);
      const sign = line.kind === 'payment' ? 1 : -1;
      out.push(line.amount === Math.abs(line.txn.amount) ? line.txn : { ...line.txn, amount: sign * line.amount, net: sign * line.amount - line.txn.fee });
    }
    return out;
  }

  /** The answered (expanded, copied) list, finished: status overrides on expanded sources, and the corruption. */
  finish<T>(body: T): T {
    const data = (body as { data?: unknown[] }).data ?? [];
    for (const item of data as Array<Record<string, unknown>>) {
      const source = item.source as Record<string, unknown> | string | undefined;
      if (source && typeof source === 'object') {
        const status = this.statusOverrides.get(String(source.id));
        if (status) source.status = status;
      }
      if (this.faults.corruptionMode === 'columns') delete item.amount;
    }
    return body;
  }

  /** The same bill-only charge and transaction for the same injected line, so list pages stay consistent. */
  private extraPayment(account: Account, paymentNo: string, amount: number, transactionId?: string): WireBalanceTransaction {
    const key = `${account.id}\u0000${paymentNo}\u0000${amount}`;
    const known = this.extras.get(key);
    if (known) return known;
    const created = this.unix();
    const charge = {
      id: transactionId ?? stripeId('ch'),
      object: 'charge',
      amount,
      amount_captured: amount,
      amount_refunded: 0,
      created,
      currency: 'cny',
      description: 'bill-only charge (injected)',
      livemode: account.livemode,
      metadata: { paymentNo },
      paid: true,
      payment_intent: null,
      refunded: false,
      status: 'succeeded',
    };
    const txn: WireBalanceTransaction = {
      id: stripeId('txn'),
      object: 'balance_transaction',
      amount,
      available_on: Math.ceil((created + 2 * 86400) / 86400) * 86400,
      created,
      currency: 'cny',
      description: charge.description,
      exchange_rate: null,
      fee: 0,
      fee_details: [],
      net: amount,
      reporting_category: 'charge',
      source: charge.id,
      status: 'pending',
      type: 'charge',
    };
    this.phantoms.set(charge.id, charge);
    this.extras.set(key, txn);
    return txn;
  }
}
