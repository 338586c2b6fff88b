/**
 * In-memory state of the WeChat Pay simulator: registered merchants, transactions (one per mchid + out_trade_no)
 * and refunds (one per mchid + out_refund_no). Nothing is persisted; a restart forgets everything.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { formatRfc3339China } from '../../payments/providers/wechatpay/crypto';
import type { Refund, RefundStatus, TradeState, TradeType, Transaction } from '../../payments/providers/wechatpay/types';

export interface MerchantRegistration {
  mchid: string;
  appid: string;
  merchantSerial: string;
  /** PEM of the merchant API public key (SPKI or PKCS#1); a private key PEM works too (its public half is used). */
  merchantPublicKey: string;
  /** 32 bytes. */
  apiV3Key: string;
  /** Shown on the phone page; default `Merchant <mchid>`. */
  name?: string;
}

export interface MerchantRecord {
  mchid: string;
  appid: string;
  merchantSerial: string;
  merchantPublicKey: KeyObject;
  apiV3Key: string;
  name: string;
}

export interface StoredTransaction {
  mchid: string;
  appid: string;
  out_trade_no: string;
  trade_type: TradeType;
  description: string;
  notify_url: string;
  attach?: string;
  total: number;
  currency: string;
  /** Epoch ms after which it can no longer be paid (from `time_expire`, default 2 hours). */
  expiresAt: number;
  payerOpenid?: string;
  payerClientIp?: string;
  /** Canonical form of the create request (path + body), for WeChat's idempotent re-create. */
  fingerprint: string;
  /** The create call's answer, replayed on an identical re-create. */
  prepayAnswer: Record<string, string>;
  prepay_id: string;
  code_url?: string;
  state: TradeState;
  transaction_id?: string;
  success_time?: string;
  createdAt: number;
}

export interface StoredRefund {
  mchid: string;
  refund_id: string;
  out_refund_no: string;
  out_trade_no: string;
  transaction_id: string;
  refund: number;
  total: number;
  currency: string;
  reason?: string;
  notify_url?: string;
  status: RefundStatus;
  create_time: string;
  success_time?: string;
}

const TRADE_STATE_DESC: Readonly<Record<TradeState, string>> = {
  SUCCESS: '支付成功',
  REFUND: '转入退款',
  NOTPAY: '未支付',
  CLOSED: '已关闭',
  REVOKED: '已撤销',
  USERPAYING: '用户支付中',
  PAYERROR: '支付失败',
};

const key = (mchid: string, no: string) => `${mchid}\u0000${no}`;

export class WechatPayStore {
  private readonly merchants = new Map<string, MerchantRecord>();
  private readonly transactions = new Map<string, StoredTransaction>();
  private readonly byCodeUrl = new Map<string, StoredTransaction>();
  private readonly byPrepayId = new Map<string, StoredTransaction>();
  private readonly byTransactionId = new Map<string, StoredTransaction>();
  private readonly refunds = new Map<string, StoredRefund>();

  registerMerchant(m: MerchantRegistration): MerchantRecord {
    if (!/^\d{1,32}$/.test(m.mchid)) throw new Error(`mchid must be digits: ${m.mchid}`);
    if (Buffer.byteLength(m.apiV3Key, 'utf8') !== 32) throw new Error('apiV3Key must be 32 bytes');
    const record: MerchantRecord = {
      mchid: m.mchid,
      appid: m.appid,
      merchantSerial: m.merchantSerial,
      merchantPublicKey: createPublicKey(m.merchantPublicKey),
      apiV3Key: m.apiV3Key,
      name: m.name ?? `Merchant ${m.mchid}`,
    };
    this.merchants.set(m.mchid, record);
    return record;
  }

  merchant(mchid: string): MerchantRecord | undefined {
    return this.merchants.get(mchid);
  }

  addTransaction(tx: StoredTransaction): void {
    this.transactions.set(key(tx.mchid, tx.out_trade_no), tx);
    this.byPrepayId.set(tx.prepay_id, tx);
    if (tx.code_url) this.byCodeUrl.set(tx.code_url, tx);
  }

  transaction(mchid: string, outTradeNo: string, now = Date.now()): StoredTransaction | undefined {
    return this.refresh(this.transactions.get(key(mchid, outTradeNo)), now);
  }

  /** Finds a transaction the way the customer's phone knows it: by code_url, prepay_id or out_trade_no. */
  find(ref: { code_url?: string; prepay_id?: string; out_trade_no?: string; mchid?: string }, now = Date.now()) {
    let tx: StoredTransaction | undefined;
    if (ref.code_url) tx = this.byCodeUrl.get(ref.code_url);
    else if (ref.prepay_id) tx = this.byPrepayId.get(ref.prepay_id);
    else if (ref.out_trade_no) {
      if (ref.mchid) tx = this.transactions.get(key(ref.mchid, ref.out_trade_no));
      else for (const t of this.transactions.values()) if (t.out_trade_no === ref.out_trade_no) tx = t;
    }
    return this.refresh(tx, now);
  }

  byTransaction(mchid: string, transactionId: string, now = Date.now()): StoredTransaction | undefined {
    const tx = this.byTransactionId.get(transactionId);
    return tx && tx.mchid === mchid ? this.refresh(tx, now) : undefined;
  }

  /** Records a payment attempt's outcome. */
  markPaid(tx: StoredTransaction, transactionId: string, successTime: Date, openid: string): void {
    tx.state = 'SUCCESS';
    tx.transaction_id = transactionId;
    tx.success_time = formatRfc3339China(successTime);
    tx.payerOpenid = openid;
    this.byTransactionId.set(transactionId, tx);
  }

  addRefund(r: StoredRefund): void {
    this.refunds.set(key(r.mchid, r.out_refund_no), r);
  }

  refund(mchid: string, outRefundNo: string): StoredRefund | undefined {
    return this.refunds.get(key(mchid, outRefundNo));
  }

  /** Every transaction and refund of a merchant, for its bills. */
  merchantRecords(mchid: string, now = Date.now()): { transactions: StoredTransaction[]; refunds: StoredRefund[] } {
    return {
      transactions: [...this.transactions.values()].filter((t) => t.mchid === mchid).map((t) => this.refresh(t, now)!),
      refunds: [...this.refunds.values()].filter((r) => r.mchid === mchid),
    };
  }

  refundsOf(tx: StoredTransaction): StoredRefund[] {
    return [...this.refunds.values()].filter((r) => r.mchid === tx.mchid && r.out_trade_no === tx.out_trade_no);
  }

  /**
   * What can still be refunded: the total minus refunds that succeeded or are in flight. ABNORMAL and CLOSED
   * refunds give their amount back (a simplification: at WeChat an ABNORMAL refund's money waits for the
   * merchant to redirect it).
   */
  refundable(tx: StoredTransaction): number {
    const used = this.refundsOf(tx)
      .filter((r) => r.status === 'SUCCESS' || r.status === 'PROCESSING')
      .reduce((sum, r) => sum + r.refund, 0);
    return tx.total - used;
  }

  /** An unpaid transaction past its `time_expire` reads (and stays) CLOSED. */
  private refresh(tx: StoredTransaction | undefined, now: number): StoredTransaction | undefined {
    if (tx && (tx.state === 'NOTPAY' || tx.state === 'PAYERROR' || tx.state === 'USERPAYING') && now > tx.expiresAt) {
      tx.state = 'CLOSED';
    }
    return tx;
  }

  /** The transaction as `GET /v3/pay/transactions/out-trade-no/{no}` and `TRANSACTION.SUCCESS` describe it. */
  static toWire(tx: StoredTransaction): Transaction {
    const paid = tx.state === 'SUCCESS' || tx.state === 'REFUND';
    return {
      appid: tx.appid,
      mchid: tx.mchid,
      out_trade_no: tx.out_trade_no,
      ...(tx.transaction_id ? { transaction_id: tx.transaction_id } : {}),
      trade_type: tx.trade_type,
      trade_state: tx.state,
      trade_state_desc: TRADE_STATE_DESC[tx.state],
      ...(paid ? { bank_type: 'OTHERS' } : {}),
      attach: tx.attach ?? '',
      ...(tx.success_time ? { success_time: tx.success_time } : {}),
      ...(paid && tx.payerOpenid ? { payer: { openid: tx.payerOpenid } } : {}),
      amount: paid
        ? { total: tx.total, payer_total: tx.total, currency: tx.currency, payer_currency: tx.currency }
        : { total: tx.total, currency: tx.currency, payer_currency: tx.currency },
      promotion_detail: [],
    };
  }

  /** The refund as `POST/GET /v3/refund/domestic/refunds` answer it. */
  static refundToWire(r: StoredRefund): Refund {
    return {
      refund_id: r.refund_id,
      out_refund_no: r.out_refund_no,
      transaction_id: r.transaction_id,
      out_trade_no: r.out_trade_no,
      channel: 'ORIGINAL',
      user_received_account: '支付用户零钱',
      ...(r.success_time ? { success_time: r.success_time } : {}),
      create_time: r.create_time,
      status: r.status,
      funds_account: 'AVAILABLE',
      amount: {
        total: r.total,
        refund: r.refund,
        payer_total: r.total,
        payer_refund: r.refund,
        settlement_refund: r.refund,
        settlement_total: r.total,
        discount_refund: 0,
        currency: r.currency,
        refund_fee: 0,
      },
      promotion_detail: [],
    };
  }
}
