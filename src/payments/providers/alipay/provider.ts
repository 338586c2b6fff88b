import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import { readAlipayBillZip } from '../../../reconciliation/alipay-bill';
import { makeBill, type Bill } from '../../../reconciliation/bill';
import { downloadBillFile } from '../../../reconciliation/download';
import { fromMajorString, toMajorString } from '../../../shared/money';
import { PaymentChannel } from '../../channels';
import { ProviderRejectedError } from '../errors';
import type {
  BillQuery,
  CreatePaymentInput,
  CreatePaymentResult,
  NotificationEvent,
  ParsedNotification,
  PaymentProvider,
  PaymentQueryResult,
  PaymentRef,
  ProviderReply,
  RawNotification,
  RefundInput,
  RefundRef,
  RefundResult,
} from '../provider';
import { AlipayClient } from './client';
import type { AlipayConfig } from './config';
import { decodeForm, formatChinaDateTime, parseChinaDateTime, toPublicKeyPem, verifyNotifyParams } from './crypto';
import type {
  BillDownloadUrlResponse,
  NotifyParams,
  PrecreateResponse,
  ProductCode,
  RefundQueryResponse,
  RefundResponse,
  TradeCloseResponse,
  TradeCreateBiz,
  TradeQueryResponse,
} from './types';

const PROVIDER = 'alipay';
/** Alipay limits `subject` and `refund_reason` to 256 characters. */
const SUBJECT_MAX = 256;
const REFUND_REASON_MAX = 256;

/** How each channel is created: the gateway method and its product code. */
const CHANNELS: Readonly<Partial<Record<PaymentChannel, { method: string; productCode: ProductCode }>>> = {
  [PaymentChannel.ALIPAY_QR]: { method: 'alipay.trade.precreate', productCode: 'FACE_TO_FACE_PAYMENT' },
  [PaymentChannel.ALIPAY_PAGE]: { method: 'alipay.trade.page.pay', productCode: 'FAST_INSTANT_TRADE_PAY' },
  [PaymentChannel.ALIPAY_WAP]: { method: 'alipay.trade.wap.pay', productCode: 'QUICK_WAP_WAY' },
};

/** What a verified synchronous return (the browser coming back to `return_url`) says. */
export type ReturnVerification =
  | { ok: true; paymentNo: string; providerTransactionId?: string; amount?: number }
  | { ok: false; reason: string };

/**
 * Alipay OpenAPI adapter (RSA2, public-key mode) for QR (当面付 precreate), PAGE (电脑网站支付) and WAP (手机网站支付)
 * payments. Gateway calls go through the official SDK (`AlipayClient`), which signs requests and verifies every
 * answer; notifications are verified here, on the raw form body.
 */
export class AlipayProvider implements PaymentProvider {
  readonly name = 'alipay' as const;
  readonly channels: readonly PaymentChannel[] = [PaymentChannel.ALIPAY_QR, PaymentChannel.ALIPAY_PAGE, PaymentChannel.ALIPAY_WAP];

  private readonly client: AlipayClient;
  private readonly alipayKey: KeyObject;

  constructor(private readonly config: AlipayConfig) {
    this.client = new AlipayClient(config);
    this.alipayKey = createPublicKey(toPublicKeyPem(config.alipayPublicKey));
  }

  async createPayment(input: CreatePaymentInput): Promise<CreatePaymentResult> {
    const channel = CHANNELS[input.channel];
    if (!channel) throw rejected(`channel ${input.channel} is not served by Alipay`, 'UNSUPPORTED_CHANNEL');
    if (input.currency.toUpperCase() !== 'CNY') throw rejected(`Alipay takes CNY only, not ${input.currency}`, 'UNSUPPORTED_CURRENCY');
    const biz: TradeCreateBiz = {
      out_trade_no: input.paymentNo,
      total_amount: toMajorString(input.amount),
      subject: Array.from(input.description).slice(0, SUBJECT_MAX).join(''),
      product_code: channel.productCode,
      // The QR (or cashier) itself stops being payable then: an unscanned QR cannot be closed any other way.
      time_expire: formatChinaDateTime(input.expiresAt),
    };

    if (input.channel === PaymentChannel.ALIPAY_QR) {
      const res = await this.client.call<PrecreateResponse>(channel.method, biz, { notify_url: input.notifyUrl });
      return { qrCodeUrl: str(res.qr_code), raw: res };
    }
    const params: Record<string, string> = { notify_url: input.notifyUrl };
    if (input.returnUrl) params.return_url = input.returnUrl;
    const wap = input.channel === PaymentChannel.ALIPAY_WAP && input.returnUrl ? { quit_url: input.returnUrl } : {};
    const redirectUrl = this.client.pageUrl(channel.method, { ...biz, ...wap }, params);
    return { redirectUrl, raw: { method: channel.method, out_trade_no: input.paymentNo } };
  }

  async queryPayment(input: PaymentRef): Promise<PaymentQueryResult> {
    let res: TradeQueryResponse;
    try {
      res = await this.client.call<TradeQueryResponse>('alipay.trade.query', { out_trade_no: input.paymentNo });
    } catch (err) {
      // Alipay's answer for a precreated QR nobody has scanned yet (and for a page/WAP cashier never opened).
      if (isRejected(err, 'ACQ.TRADE_NOT_EXIST')) return { state: 'NOT_FOUND', raw: { sub_code: 'ACQ.TRADE_NOT_EXIST', message: err.message } };
      throw err;
    }
    const paidAt = res.send_pay_date ? parseChinaDateTime(res.send_pay_date) : undefined;
    const common = {
      providerTransactionId: res.trade_no || undefined,
      amount: amountOf(res.total_amount),
      raw: res,
    };
    switch (res.trade_status) {
      case 'TRADE_SUCCESS':
      case 'TRADE_FINISHED':
        return { state: 'SUCCEEDED', ...common, paidAt };
      case 'WAIT_BUYER_PAY':
        return { state: 'PENDING', ...common };
      case 'TRADE_CLOSED':
        // A paid trade refunded in full also reads TRADE_CLOSED; it was paid (refunds are tracked on their own).
        return paidAt ? { state: 'SUCCEEDED', ...common, paidAt } : { state: 'CLOSED', ...common };
      default:
        throw rejected(`unknown trade_status ${String(res.trade_status)}`, 'UNKNOWN_TRADE_STATUS');
    }
  }

  /**
   * Closes an unpaid trade. Alipay only knows a precreated QR once it has been scanned: before that, close answers
   * ACQ.TRADE_NOT_EXIST, which resolves here although the QR is NOT closed: it stays payable until its `time_expire`
   * (set to the payment's `expiresAt` at creation). A success arriving after a local close must therefore be refunded.
   */
  async closePayment(input: PaymentRef): Promise<void> {
    try {
      await this.client.call<TradeCloseResponse>('alipay.trade.close', { out_trade_no: input.paymentNo });
    } catch (err) {
      if (isRejected(err, 'ACQ.TRADE_NOT_EXIST')) return;
      // Alipay answers ACQ.TRADE_STATUS_ERROR for any trade not waiting for payment: closed already (fine) or paid.
      if (isRejected(err, 'ACQ.TRADE_STATUS_ERROR')) {
        const now = await this.queryPayment(input);
        if (now.state === 'CLOSED') return;
      }
      throw err;
    }
  }

  async refund(input: RefundInput): Promise<RefundResult> {
    if (input.currency.toUpperCase() !== 'CNY') throw rejected(`Alipay takes CNY only, not ${input.currency}`, 'UNSUPPORTED_CURRENCY');
    // alipay.trade.refund takes no notify_url: refund notifications go to the payment's notify_url.
    const biz = {
      out_trade_no: input.paymentNo,
      refund_amount: toMajorString(input.amount),
      out_request_no: input.refundNo,
      ...(input.reason ? { refund_reason: Array.from(input.reason).slice(0, REFUND_REASON_MAX).join('') } : {}),
    };
    const res = await this.client.call<RefundResponse>('alipay.trade.refund', biz);
    // fund_change N (e.g. this out_request_no was refunded by an earlier call) says nothing either way: ask. The call
    // was accepted, so a query without refund_status here means "not done yet".
    if (res.fund_change === 'Y') return { state: 'SUCCEEDED', raw: res };
    const q = await this.refundQuery(input);
    return { state: q.refund_status === 'REFUND_SUCCESS' ? 'SUCCEEDED' : 'PENDING', raw: q };
  }

  /**
   * Alipay's refund query answers 10000 without `refund_status` when it never received the refund (or it failed):
   * "未返回该字段表示退款请求未收到或者退款失败", and the advice is to send it again with the same out_request_no. That is
   * reported as REFUND_NOT_FOUND so the caller re-sends (Alipay deduplicates on out_request_no).
   */
  async queryRefund(input: RefundRef): Promise<RefundResult> {
    const res = await this.refundQuery(input);
    if (res.refund_status === 'REFUND_SUCCESS') return { state: 'SUCCEEDED', raw: res };
    throw rejected(`Alipay has no completed refund ${input.refundNo}; send it again with the same number`, 'REFUND_NOT_FOUND');
  }

  private refundQuery(input: RefundRef): Promise<RefundQueryResponse> {
    return this.client.call<RefundQueryResponse>('alipay.trade.fastpay.refund.query', {
      out_trade_no: input.paymentNo,
      out_request_no: input.refundNo,
      query_options: ['gmt_refund_pay'],
    });
  }

  async parseNotification(input: RawNotification): Promise<ParsedNotification> {
    let params: Record<string, string>;
    try {
      ({ params } = decodeForm(input.rawBody));
    } catch (err) {
      return { ok: false, reason: `malformed form body: ${(err as Error).message}` };
    }
    const verified = verifyNotifyParams(params, this.alipayKey);
    if (!verified.ok) return { ok: false, reason: verified.reason };

    const p = params as NotifyParams;
    const notificationId = p.notify_id;
    if (!notificationId) return { ok: false, reason: 'no notify_id' };
    const event = toEvent(p);
    if (!event) return { ok: false, reason: 'malformed trade_status_sync parameters', notificationId };
    const mismatch = this.mismatch(p);
    return { ok: true, notificationId, event, payload: params, ...(mismatch ? { mismatch } : {}) };
  }

  /**
   * The trade bill of a day: `alipay.data.dataservice.bill.downloadurl.query` (`bill_type=trade`) names a download
   * URL (unsigned, valid 30 s); the zip's CSV is GBK and checked against its own 合计 lines. Alipay answers
   * `isp.bill_not_exist` for a day without a bill: an empty one.
   */
  async fetchBill(input: BillQuery): Promise<Bill> {
    let res: BillDownloadUrlResponse;
    try {
      res = await this.client.call<BillDownloadUrlResponse>('alipay.data.dataservice.bill.downloadurl.query', {
        bill_type: 'trade',
        bill_date: input.date,
      });
    } catch (err) {
      if (isRejected(err, 'isp.bill_not_exist')) return makeBill(this.name, input.date, []);
      throw err;
    }
    const bytes = await downloadBillFile(PROVIDER, str(res.bill_download_url), { timeoutMs: (this.config.timeoutMs ?? 10_000) * 3 });
    return readAlipayBillZip(bytes, { date: input.date });
  }

  /** `success` (exactly these 7 characters) stops Alipay's retries; anything else is redelivered later. */
  notificationReply(ok: boolean): ProviderReply {
    return ok ? { status: 200, contentType: 'text/plain', body: 'success' } : { status: 400, contentType: 'text/plain', body: 'fail' };
  }

  /**
   * Verifies the parameters Alipay appends to `return_url` when the browser comes back from a page/WAP cashier (same
   * rule as notifications). Pass only the parameters Alipay appended: a `return_url` with its own query string adds
   * parameters the signature does not cover (as at Alipay). Only a hint for the page the customer sees: the
   * notification or a query is what counts.
   */
  verifyReturn(query: URLSearchParams | Record<string, string>): ReturnVerification {
    const params = query instanceof URLSearchParams ? Object.fromEntries(query) : query;
    const verified = verifyNotifyParams(params, this.alipayKey);
    if (!verified.ok) return verified;
    if (params.app_id !== this.config.appId) return { ok: false, reason: `app_id ${params.app_id} is not this app's` };
    if (!params.out_trade_no) return { ok: false, reason: 'no out_trade_no' };
    return {
      ok: true,
      paymentNo: params.out_trade_no,
      providerTransactionId: params.trade_no || undefined,
      amount: amountOf(params.total_amount),
    };
  }

  private mismatch(p: NotifyParams): string | undefined {
    if (p.app_id !== this.config.appId) return `app_id ${String(p.app_id)} is not this app's ${this.config.appId}`;
    if (this.config.sellerId && p.seller_id !== this.config.sellerId) {
      return `seller_id ${String(p.seller_id)} is not this merchant's ${this.config.sellerId}`;
    }
    return undefined;
  }
}

/**
 * The normalized event of a verified notification, or `undefined` when it lacks what it must carry.
 * Refund-triggered notifications carry `refund_fee`: partial refunds keep TRADE_SUCCESS, a full refund reads
 * TRADE_CLOSED; they confirm the refund `out_biz_no` (= its out_request_no) and never a payment. Their `refund_fee`
 * is the trade's cumulative refunded amount, not this refund's, so the event leaves `amount` unset.
 */
function toEvent(p: NotifyParams): NotificationEvent | undefined {
  const paymentNo = p.out_trade_no;
  if (!paymentNo || !p.trade_status) return undefined;
  const isRefund = p.refund_fee !== undefined && p.refund_fee !== '';

  if (isRefund && (p.trade_status === 'TRADE_SUCCESS' || p.trade_status === 'TRADE_CLOSED')) {
    if (!p.out_biz_no) return { type: 'ignored', paymentNo, reason: `refund notification without out_biz_no (${p.trade_status})` };
    return { type: 'refund', status: 'SUCCEEDED', refundNo: p.out_biz_no, paymentNo };
  }
  switch (p.trade_status) {
    case 'TRADE_SUCCESS':
    // TRADE_FINISHED (no more refunds possible) also confirms the payment, whatever was refunded before.
    case 'TRADE_FINISHED': {
      const amount = amountOf(p.total_amount);
      if (amount === undefined) return undefined;
      return {
        type: 'payment',
        status: 'SUCCEEDED',
        paymentNo,
        providerTransactionId: p.trade_no || undefined,
        amount,
        currency: 'CNY',
        paidAt: p.gmt_payment ? parseChinaDateTime(p.gmt_payment) : undefined,
      };
    }
    case 'TRADE_CLOSED': {
      const amount = amountOf(p.total_amount);
      if (amount === undefined) return undefined;
      return { type: 'payment', status: 'CLOSED', paymentNo, providerTransactionId: p.trade_no || undefined, amount, currency: 'CNY' };
    }
    default:
      return { type: 'ignored', paymentNo, reason: `trade_status ${String(p.trade_status)}` };
  }
}

function amountOf(yuan: string | undefined): number | undefined {
  if (!yuan) return undefined;
  try {
    return fromMajorString(yuan);
  } catch {
    return undefined;
  }
}

function isRejected(err: unknown, code: string): err is ProviderRejectedError {
  return err instanceof ProviderRejectedError && err.providerCode === code;
}

function rejected(message: string, code: string): ProviderRejectedError {
  return new ProviderRejectedError(message, PROVIDER, code);
}

function str(v: unknown): string {
  if (typeof v !== 'string' || v === '') throw rejected('Alipay answer lacks an expected field', 'INVALID_RESPONSE');
  return v;
}
