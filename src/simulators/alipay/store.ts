/**
 * In-memory state of the Alipay simulator: registered applications, trades (one per app_id + out_trade_no) and
 * refunds (one per trade + out_request_no). Nothing is persisted; a restart forgets everything.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { formatChinaDateTime } from '../../payments/providers/alipay/crypto';
import type { ProductCode, TradeQueryResponse, TradeStatus } from '../../payments/providers/alipay/types';
import { toMajorString } from '../../shared/money';
import { randomDigits } from '../shared/credentials';

export interface AppRegistration {
  appId: string;
  /** PEM of the application public key (SPKI or PKCS#1); a private key PEM works too (its public half is used). */
  appPublicKey: string;
  /** The merchant's Alipay user id (PID, `2088…`), sent as `seller_id`. */
  sellerId: string;
  /** Shown on the phone and cashier pages; default `Merchant <sellerId>`. */
  name?: string;
}

export interface AppRecord {
  appId: string;
  sellerId: string;
  appPublicKey: KeyObject;
  name: string;
}

export type TradeMethod = 'alipay.trade.precreate' | 'alipay.trade.page.pay' | 'alipay.trade.wap.pay';

/**
 * `UNSCANNED`: precreated, but nobody has scanned the QR yet. Alipay itself does not know the trade then: query and
 * close answer ACQ.TRADE_NOT_EXIST, and the QR stays payable until its expiry.
 */
export type StoredTradeStatus = 'UNSCANNED' | TradeStatus;

export interface StoredTrade {
  appId: string;
  sellerId: string;
  out_trade_no: string;
  method: TradeMethod;
  product_code: ProductCode;
  subject: string;
  /** Fen. */
  total: number;
  notify_url?: string;
  return_url?: string;
  quit_url?: string;
  /** Epoch ms after which it can no longer be paid (`time_expire` / `timeout_express`, default 2 hours). */
  expiresAt: number;
  /** What must match when the same out_trade_no is created again (else ACQ.CONTEXT_INCONSISTENT). */
  fingerprint: string;
  qr_code?: string;
  status: StoredTradeStatus;
  /** Assigned when Alipay learns of the trade (QR scanned, cashier opened). */
  trade_no?: string;
  buyer_id?: string;
  buyer_logon_id?: string;
  gmt_create?: Date;
  gmt_payment?: Date;
  gmt_close?: Date;
}

export interface StoredRefund {
  appId: string;
  out_trade_no: string;
  trade_no: string;
  out_request_no: string;
  /** Fen. */
  amount: number;
  reason?: string;
  gmt_refund: Date;
  /**
   * `SUCCESS` (default when absent: Alipay refunds synchronously) or `PROCESSING`: accepted with `fund_change: N`,
   * the refund query answers without `refund_status` until it succeeds (scripted by `setRefundBehaviour`).
   */
  status?: 'PROCESSING' | 'SUCCESS';
}

const key = (...parts: string[]) => parts.join('\u0000');

export class AlipayStore {
  private readonly apps = new Map<string, AppRecord>();
  private readonly trades = new Map<string, StoredTrade>();
  private readonly byQrCode = new Map<string, StoredTrade>();
  private readonly byTradeNo = new Map<string, StoredTrade>();
  private readonly refunds = new Map<string, StoredRefund>();

  registerApp(a: AppRegistration): AppRecord {
    if (!/^\d{1,32}$/.test(a.appId)) throw new Error(`app id must be digits: ${a.appId}`);
    const record: AppRecord = {
      appId: a.appId,
      sellerId: a.sellerId,
      appPublicKey: createPublicKey(a.appPublicKey),
      name: a.name ?? `Merchant ${a.sellerId}`,
    };
    this.apps.set(a.appId, record);
    return record;
  }

  app(appId: string): AppRecord | undefined {
    return this.apps.get(appId);
  }

  addTrade(t: StoredTrade): void {
    this.trades.set(key(t.appId, t.out_trade_no), t);
    if (t.qr_code) this.byQrCode.set(t.qr_code, t);
  }

  trade(appId: string, outTradeNo: string, now = Date.now()): StoredTrade | undefined {
    return this.refresh(this.trades.get(key(appId, outTradeNo)), now);
  }

  /** By trade_no (only trades Alipay knows of have one). */
  tradeByNo(appId: string, tradeNo: string, now = Date.now()): StoredTrade | undefined {
    const t = this.byTradeNo.get(tradeNo);
    return t && t.appId === appId ? this.refresh(t, now) : undefined;
  }

  /** Finds a trade the way the customer's phone knows it: by qr_code, or by out_trade_no (and app id if given). */
  find(ref: { qr_code?: string; out_trade_no?: string; app_id?: string }, now = Date.now()): StoredTrade | undefined {
    let t: StoredTrade | undefined;
    if (ref.qr_code) t = this.byQrCode.get(ref.qr_code);
    else if (ref.out_trade_no) {
      if (ref.app_id) t = this.trades.get(key(ref.app_id, ref.out_trade_no));
      else for (const x of this.trades.values()) if (x.out_trade_no === ref.out_trade_no) t = x;
    }
    return this.refresh(t, now);
  }

  /** Alipay learns of the trade (QR scanned, cashier opened): it now has a trade_no and reads WAIT_BUYER_PAY. */
  open(t: StoredTrade, now = new Date()): void {
    if (t.status !== 'UNSCANNED') return;
    t.status = 'WAIT_BUYER_PAY';
    t.trade_no = `${formatChinaDateTime(now).slice(0, 10).replace(/-/g, '')}22001${randomDigits(15)}`;
    t.gmt_create = now;
    t.buyer_id = `2088${randomDigits(12)}`;
    t.buyer_logon_id = `sim***@example.com`;
    this.byTradeNo.set(t.trade_no, t);
  }

  markPaid(t: StoredTrade, now = new Date()): void {
    this.open(t, now);
    t.status = 'TRADE_SUCCESS';
    t.gmt_payment = now;
  }

  close(t: StoredTrade, now = new Date()): void {
    t.status = 'TRADE_CLOSED';
    t.gmt_close = now;
  }

  addRefund(r: StoredRefund): void {
    this.refunds.set(key(r.appId, r.out_trade_no, r.out_request_no), r);
  }

  refund(appId: string, outTradeNo: string, outRequestNo: string): StoredRefund | undefined {
    return this.refunds.get(key(appId, outTradeNo, outRequestNo));
  }

  /** Every trade and refund of an application, for its bills. */
  appRecords(appId: string, now = Date.now()): { trades: StoredTrade[]; refunds: StoredRefund[] } {
    return {
      trades: [...this.trades.values()].filter((t) => t.appId === appId).map((t) => this.refresh(t, now)!),
      refunds: [...this.refunds.values()].filter((r) => r.appId === appId),
    };
  }

  refundsOf(t: StoredTrade): StoredRefund[] {
    return [...this.refunds.values()].filter((r) => r.appId === t.appId && r.out_trade_no === t.out_trade_no);
  }

  /** Fen refunded so far (refunds that succeeded; a PROCESSING one is not refunded yet). */
  refunded(t: StoredTrade): number {
    return this.refundsOf(t)
      .filter((r) => r.status !== 'PROCESSING')
      .reduce((sum, r) => sum + r.amount, 0);
  }

  /** Fen no longer refundable: refunds that succeeded or are still processing. */
  committed(t: StoredTrade): number {
    return this.refundsOf(t).reduce((sum, r) => sum + r.amount, 0);
  }

  /** An unpaid trade Alipay knows of, past its expiry, reads (and stays) TRADE_CLOSED. */
  private refresh(t: StoredTrade | undefined, now: number): StoredTrade | undefined {
    if (t && t.status === 'WAIT_BUYER_PAY' && now > t.expiresAt) this.close(t, new Date(t.expiresAt));
    return t;
  }

  /** Whether the buyer can still pay it. */
  static payable(t: StoredTrade, now = Date.now()): boolean {
    return (t.status === 'UNSCANNED' || t.status === 'WAIT_BUYER_PAY') && now <= t.expiresAt;
  }

  /** The trade as `alipay.trade.query` describes it (without code/msg). */
  static toQuery(t: StoredTrade): Omit<TradeQueryResponse, 'code' | 'msg'> {
    const paid = t.gmt_payment !== undefined;
    const total = toMajorString(t.total);
    const paidAmount = paid ? total : '0.00';
    return {
      trade_no: t.trade_no,
      out_trade_no: t.out_trade_no,
      buyer_logon_id: t.buyer_logon_id,
      trade_status: t.status === 'UNSCANNED' ? 'WAIT_BUYER_PAY' : t.status,
      total_amount: total,
      buyer_pay_amount: paidAmount,
      point_amount: '0.00',
      invoice_amount: paidAmount,
      receipt_amount: paidAmount,
      ...(t.gmt_payment ? { send_pay_date: formatChinaDateTime(t.gmt_payment) } : {}),
      buyer_user_id: t.buyer_id,
    };
  }
}
