/**
 * In-memory state of the UnionPay simulator: registered merchants and transactions. UnionPay identifies a
 * transaction by merchant + `orderId` (+ `txnTime` in queries) and gives each a `queryId`; consumes (payments)
 * and refunds share the merchant's `orderId` space. Nothing is persisted; a restart forgets everything.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { certIdOf } from '../../payments/providers/unionpay/crypto';

export interface MerchantRegistration {
  merId: string;
  /** PEM of the merchant signing certificate (its serial is the `certId` requests must carry). */
  signCertPem: string;
  /** Shown on the cashier page; default `Merchant <merId>`. */
  name?: string;
}

export interface MerchantRecord {
  merId: string;
  certId: string;
  publicKey: KeyObject;
  name: string;
}

/** PENDING: payable; SUCCESS: paid; FAILED: last attempt failed (payable again); EXPIRED: past payTimeout, unpaid. */
export type ConsumeState = 'PENDING' | 'SUCCESS' | 'FAILED' | 'EXPIRED';
export type RefundState = 'PENDING' | 'SUCCESS' | 'FAILED';

interface Settled {
  /** UnionPay's serial number of the transaction (21 digits), known once it is processed. */
  queryId?: string;
  traceNo?: string;
  /** `MMDDhhmmss` China time. */
  traceTime?: string;
  /** `MMDD`. */
  settleDate?: string;
}

export interface StoredConsume extends Settled {
  type: 'consume';
  kind: 'QR' | 'GATEWAY';
  merId: string;
  orderId: string;
  txnTime: string;
  txnSubType: string;
  bizType: string;
  channelType: string;
  txnAmt: number;
  backUrl?: string;
  frontUrl?: string;
  /** Epoch ms after which it can no longer be paid (`payTimeout`). */
  payTimeoutAt: number;
  qrCode?: string;
  /** Opaque handle of the cashier page (gateway payments). */
  cashierRef?: string;
  state: ConsumeState;
  paidAt?: number;
  createdAt: number;
}

export interface StoredRefund extends Settled {
  type: 'refund';
  merId: string;
  orderId: string;
  txnTime: string;
  bizType: string;
  channelType: string;
  origQryId: string;
  origOrderId: string;
  txnAmt: number;
  backUrl?: string;
  state: RefundState;
  createdAt: number;
}

export type StoredTransaction = StoredConsume | StoredRefund;

const key = (merId: string, orderId: string) => `${merId}\u0000${orderId}`;

export class UnionPayStore {
  private readonly merchants = new Map<string, MerchantRecord>();
  private readonly transactions = new Map<string, StoredTransaction>();
  private readonly byQueryId = new Map<string, StoredTransaction>();
  private readonly byQrCode = new Map<string, StoredConsume>();
  private readonly byCashierRef = new Map<string, StoredConsume>();

  registerMerchant(m: MerchantRegistration): MerchantRecord {
    if (!/^[0-9A-Za-z]{1,32}$/.test(m.merId)) throw new Error(`merId must be letters and digits: ${m.merId}`);
    const cert = new X509Certificate(m.signCertPem);
    const record: MerchantRecord = {
      merId: m.merId,
      certId: certIdOf(cert),
      publicKey: cert.publicKey,
      name: m.name ?? `Merchant ${m.merId}`,
    };
    this.merchants.set(m.merId, record);
    return record;
  }

  merchant(merId: string): MerchantRecord | undefined {
    return this.merchants.get(merId);
  }

  add(tx: StoredTransaction): void {
    this.transactions.set(key(tx.merId, tx.orderId), tx);
    if (tx.type === 'consume') {
      if (tx.qrCode) this.byQrCode.set(tx.qrCode, tx);
      if (tx.cashierRef) this.byCashierRef.set(tx.cashierRef, tx);
    }
    if (tx.queryId) this.byQueryId.set(tx.queryId, tx);
  }

  /** Records the `queryId` a transaction got when it was processed. */
  settled(tx: StoredTransaction, s: Required<Settled>): void {
    Object.assign(tx, s);
    this.byQueryId.set(s.queryId, tx);
  }

  transaction(merId: string, orderId: string, now = Date.now()): StoredTransaction | undefined {
    return this.refresh(this.transactions.get(key(merId, orderId)), now);
  }

  byQuery(queryId: string, now = Date.now()): StoredTransaction | undefined {
    return this.refresh(this.byQueryId.get(queryId), now);
  }

  /** A payment the way the customer's phone or a script knows it: by qrCode, cashier handle or orderId. */
  findConsume(ref: { qrCode?: string; cashierRef?: string; orderId?: string; merId?: string }, now = Date.now()): StoredConsume | undefined {
    let tx: StoredTransaction | undefined;
    if (ref.qrCode) tx = this.byQrCode.get(ref.qrCode);
    else if (ref.cashierRef) tx = this.byCashierRef.get(ref.cashierRef);
    else if (ref.orderId) {
      if (ref.merId) tx = this.transactions.get(key(ref.merId, ref.orderId));
      else for (const t of this.transactions.values()) if (t.orderId === ref.orderId && t.type === 'consume') tx = t;
    }
    const found = this.refresh(tx, now);
    return found?.type === 'consume' ? found : undefined;
  }

  /** Every transaction of a merchant, for its reconciliation files. */
  merchantTransactions(merId: string, now = Date.now()): StoredTransaction[] {
    return [...this.transactions.values()].filter((t) => t.merId === merId).map((t) => this.refresh(t, now)!);
  }

  refundsOf(consume: StoredConsume): StoredRefund[] {
    const out: StoredRefund[] = [];
    for (const t of this.transactions.values()) {
      if (t.type === 'refund' && t.merId === consume.merId && t.origQryId === consume.queryId) out.push(t);
    }
    return out;
  }

  /** What can still be refunded: the amount minus refunds that succeeded or are in flight. */
  refundable(consume: StoredConsume): number {
    return (
      consume.txnAmt -
      this.refundsOf(consume)
        .filter((r) => r.state !== 'FAILED')
        .reduce((sum, r) => sum + r.txnAmt, 0)
    );
  }

  /** An unpaid consume past its `payTimeout` reads (and stays) EXPIRED. */
  private refresh<T extends StoredTransaction>(tx: T | undefined, now: number): T | undefined {
    if (tx?.type === 'consume' && (tx.state === 'PENDING' || tx.state === 'FAILED') && now > tx.payTimeoutAt) {
      tx.state = 'EXPIRED';
    }
    return tx;
  }
}
