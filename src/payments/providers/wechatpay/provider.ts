import type { KeyObject } from 'node:crypto';
import { makeBill, type Bill } from '../../../reconciliation/bill';
import { readWechatPayBill } from '../../../reconciliation/wechatpay-bill';
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
  ProviderPaymentState,
  ProviderRefundState,
  ProviderReply,
  RawNotification,
  RefundInput,
  RefundRef,
  RefundResult,
} from '../provider';
import { WechatPayHttpClient } from './client';
import type { WechatPayConfig } from './config';
import {
  aesGcmDecrypt,
  buildJsapiPayMessage,
  buildResponseMessage,
  formatRfc3339China,
  generateNonce,
  rsaSign,
  rsaVerify,
  SIGNTEST_PREFIX,
  timestampWithinWindow,
  toPrivateKey,
  toPublicKey,
  unixTimestamp,
} from './crypto';
import type {
  NotificationBody,
  PrepayRequest,
  Refund,
  RefundNotificationResource,
  TradeBillAnswer,
  RefundStatus,
  TradeState,
  Transaction,
} from './types';

const PROVIDER = 'wechatpay';
/** WeChat Pay limits `description` to 127 characters and a refund `reason` to 80. */
const DESCRIPTION_MAX = 127;
const REFUND_REASON_MAX = 80;

const TRADE_STATE: Readonly<Record<TradeState, ProviderPaymentState>> = {
  SUCCESS: 'SUCCEEDED',
  // REFUND (转入退款): it was paid; refunds are tracked on their own.
  REFUND: 'SUCCEEDED',
  NOTPAY: 'PENDING',
  USERPAYING: 'PENDING',
  CLOSED: 'CLOSED',
  REVOKED: 'CLOSED',
  PAYERROR: 'FAILED',
};

const REFUND_STATE: Readonly<Record<RefundStatus, ProviderRefundState>> = {
  SUCCESS: 'SUCCEEDED',
  PROCESSING: 'PENDING',
  CLOSED: 'FAILED',
  ABNORMAL: 'FAILED',
};

const REFUND_EVENT_STATE: Readonly<Record<string, ProviderRefundState>> = {
  'REFUND.SUCCESS': 'SUCCEEDED',
  'REFUND.ABNORMAL': 'FAILED',
  'REFUND.CLOSED': 'FAILED',
};

/** How each channel is created: endpoint, its extra body fields, and what the caller gets back. */
interface ChannelSpec {
  path: string;
  extras(input: CreatePaymentInput): Partial<PrepayRequest>;
  result(data: Record<string, unknown>): Omit<CreatePaymentResult, 'raw'>;
}

/**
 * WeChat Pay API v3 adapter (direct merchant, "WeChat Pay public key" mode) for Native (QR), JSAPI (in-WeChat and
 * mini-program) and H5 (mobile browser) payments. Requests are signed and answers verified by
 * `WechatPayHttpClient`; callbacks are verified and decrypted here, on the raw body.
 */
export class WechatPayProvider implements PaymentProvider {
  readonly name = 'wechatpay' as const;
  readonly channels: readonly PaymentChannel[] = [
    PaymentChannel.WECHAT_NATIVE,
    PaymentChannel.WECHAT_JSAPI,
    PaymentChannel.WECHAT_H5,
  ];

  private readonly http: WechatPayHttpClient;
  private readonly merchantKey: KeyObject;
  private readonly platformKey: KeyObject;
  private readonly specs: Readonly<Partial<Record<PaymentChannel, ChannelSpec>>>;

  constructor(private readonly config: WechatPayConfig) {
    if (Buffer.byteLength(config.apiV3Key, 'utf8') !== 32) {
      throw new Error('WeChat Pay APIv3 key must be exactly 32 bytes (WECHATPAY_APIV3_KEY)');
    }
    this.merchantKey = toPrivateKey(config.merchantPrivateKey);
    this.platformKey = toPublicKey(config.platformPublicKey);
    this.http = new WechatPayHttpClient(config);
    this.specs = {
      [PaymentChannel.WECHAT_NATIVE]: {
        path: '/v3/pay/transactions/native',
        extras: () => ({}),
        result: (data) => ({ qrCodeUrl: str(data.code_url) }),
      },
      [PaymentChannel.WECHAT_JSAPI]: {
        path: '/v3/pay/transactions/jsapi',
        extras: (input) => ({ payer: { openid: String(input.openid) } }),
        result: (data) => {
          const prepayId = str(data.prepay_id);
          return { providerReference: prepayId, jsapiParams: this.jsapiParams(prepayId) };
        },
      },
      [PaymentChannel.WECHAT_H5]: {
        path: '/v3/pay/transactions/h5',
        extras: (input) => ({ scene_info: { payer_client_ip: String(input.clientIp), h5_info: { type: 'Wap' } } }),
        result: (data) => ({ redirectUrl: str(data.h5_url) }),
      },
    };
  }

  async createPayment(input: CreatePaymentInput): Promise<CreatePaymentResult> {
    const spec = this.specs[input.channel];
    if (!spec) throw rejected(`channel ${input.channel} is not served by WeChat Pay`, 'UNSUPPORTED_CHANNEL');
    if (input.channel === PaymentChannel.WECHAT_JSAPI && !input.openid) {
      throw rejected('a JSAPI payment needs the payer openid', 'PARAM_ERROR');
    }
    if (input.channel === PaymentChannel.WECHAT_H5 && !input.clientIp) {
      throw rejected('an H5 payment needs the payer client IP', 'PARAM_ERROR');
    }
    const body: PrepayRequest = {
      appid: this.config.appid,
      mchid: this.config.mchid,
      description: Array.from(input.description).slice(0, DESCRIPTION_MAX).join(''),
      out_trade_no: input.paymentNo,
      time_expire: formatRfc3339China(input.expiresAt),
      notify_url: input.notifyUrl,
      amount: { total: input.amount, currency: input.currency },
      ...spec.extras(input),
    };
    const { data } = await this.http.request<Record<string, unknown>>('POST', spec.path, body);
    return { ...spec.result(data ?? {}), raw: data };
  }

  async queryPayment(input: PaymentRef): Promise<PaymentQueryResult> {
    let data: Transaction;
    try {
      ({ data } = await this.http.request<Transaction>(
        'GET',
        `/v3/pay/transactions/out-trade-no/${encodeURIComponent(input.paymentNo)}?mchid=${encodeURIComponent(this.config.mchid)}`,
      ));
    } catch (err) {
      if (err instanceof ProviderRejectedError && err.providerCode === 'ORDER_NOT_EXIST') {
        return { state: 'NOT_FOUND', raw: { code: err.providerCode, message: err.message } };
      }
      throw err;
    }
    const state = TRADE_STATE[data.trade_state];
    if (!state) throw rejected(`unknown trade_state ${String(data.trade_state)}`, 'UNKNOWN_TRADE_STATE');
    return {
      state,
      providerTransactionId: data.transaction_id || undefined,
      amount: data.amount?.total,
      paidAt: data.success_time ? new Date(data.success_time) : undefined,
      raw: data,
    };
  }

  async closePayment(input: PaymentRef): Promise<void> {
    try {
      await this.http.request<void>('POST', `/v3/pay/transactions/out-trade-no/${encodeURIComponent(input.paymentNo)}/close`, {
        mchid: this.config.mchid,
      });
    } catch (err) {
      // Closed already, or never created there: either way it cannot be paid, which is what the caller wants.
      if (err instanceof ProviderRejectedError && ['ORDER_CLOSED', 'ORDER_NOT_EXIST'].includes(err.providerCode)) return;
      throw err;
    }
  }

  async refund(input: RefundInput): Promise<RefundResult> {
    const body = {
      out_trade_no: input.paymentNo,
      out_refund_no: input.refundNo,
      ...(input.reason ? { reason: Array.from(input.reason).slice(0, REFUND_REASON_MAX).join('') } : {}),
      notify_url: input.notifyUrl,
      amount: { refund: input.amount, total: input.totalAmount, currency: input.currency },
    };
    const { data } = await this.http.request<Refund>('POST', '/v3/refund/domestic/refunds', body);
    return refundResult(data);
  }

  async queryRefund(input: RefundRef): Promise<RefundResult> {
    const { data } = await this.http.request<Refund>(
      'GET',
      `/v3/refund/domestic/refunds/${encodeURIComponent(input.refundNo)}`,
    );
    return refundResult(data);
  }

  async parseNotification(input: RawNotification): Promise<ParsedNotification> {
    const h = input.headers;
    const timestamp = h['wechatpay-timestamp'];
    const nonce = h['wechatpay-nonce'];
    const signature = h['wechatpay-signature'];
    const serial = h['wechatpay-serial'];
    if (!timestamp || !nonce || !signature || !serial) {
      return { ok: false, reason: 'missing Wechatpay-Timestamp/Nonce/Signature/Serial headers' };
    }
    // WeChat Pay probes merchants with deliberately bad signatures; they must be refused (4xx).
    if (signature.startsWith(SIGNTEST_PREFIX)) return { ok: false, reason: 'signature probe (WECHATPAY/SIGNTEST)' };
    if (serial !== this.config.platformPublicKeyId) return { ok: false, reason: `unknown serial ${serial}` };
    if (!timestampWithinWindow(timestamp)) return { ok: false, reason: 'timestamp outside the 300 s window' };
    if (!rsaVerify(buildResponseMessage(timestamp, nonce, input.rawBody), signature, this.platformKey)) {
      return { ok: false, reason: 'invalid signature' };
    }

    let body: NotificationBody;
    try {
      body = JSON.parse(input.rawBody.toString('utf8')) as NotificationBody;
    } catch {
      return { ok: false, reason: 'body is not JSON' };
    }
    const notificationId = typeof body?.id === 'string' ? body.id : undefined;
    const resource = body?.resource;
    if (!notificationId || !resource || typeof resource.ciphertext !== 'string' || typeof resource.nonce !== 'string') {
      return { ok: false, reason: 'not a WeChat Pay notification body', notificationId };
    }
    if (resource.algorithm !== 'AEAD_AES_256_GCM') {
      return { ok: false, reason: `unsupported algorithm ${String(resource.algorithm)}`, notificationId };
    }
    let payload: Record<string, unknown>;
    try {
      const plain = aesGcmDecrypt(resource.ciphertext, this.config.apiV3Key, resource.nonce, resource.associated_data ?? '');
      payload = JSON.parse(plain) as Record<string, unknown>;
    } catch {
      return { ok: false, reason: 'resource decryption failed', notificationId };
    }

    const event = toEvent(String(body.event_type), payload);
    if (!event) return { ok: false, reason: `malformed ${String(body.event_type)} resource`, notificationId };
    const mismatch = this.mismatch(String(body.event_type), payload);
    return { ok: true, notificationId, event, payload, ...(mismatch ? { mismatch } : {}) };
  }

  /**
   * The ALL trade bill of a day: `GET /v3/bill/tradebill` (gzip asked for) names a download URL and the SHA1 of the
   * bill; the download is unsigned, so the hash (from the signed answer) is checked before a line is read. WeChat
   * answers NO_STATEMENT_EXIST for a day without transactions: an empty bill.
   */
  async fetchBill(input: BillQuery): Promise<Bill> {
    let answer: TradeBillAnswer;
    try {
      ({ data: answer } = await this.http.request<TradeBillAnswer>(
        'GET',
        `/v3/bill/tradebill?bill_date=${encodeURIComponent(input.date)}&bill_type=ALL&tar_type=GZIP`,
      ));
    } catch (err) {
      if (err instanceof ProviderRejectedError && err.providerCode === 'NO_STATEMENT_EXIST') return makeBill(this.name, input.date, []);
      throw err;
    }
    if (!answer?.download_url || !answer.hash_value || !answer.hash_type) throw rejected('tradebill answer lacks download_url or hash', 'INVALID_RESPONSE');
    const bytes = await this.http.download(answer.download_url);
    return readWechatPayBill({ bytes, hashType: answer.hash_type, hashValue: answer.hash_value }, { date: input.date, mchid: this.config.mchid });
  }

  notificationReply(ok: boolean, message?: string): ProviderReply {
    if (ok) return { status: 204 };
    return {
      status: 400,
      contentType: 'application/json',
      body: JSON.stringify({ code: 'FAIL', message: message ?? 'rejected' }),
    };
  }

  /** `wx.requestPayment` parameters; `paySign` covers `appId\ntimeStamp\nnonceStr\npackage\n`. */
  private jsapiParams(prepayId: string): Record<string, string> {
    const appId = this.config.appid;
    const timeStamp = String(unixTimestamp());
    const nonceStr = generateNonce();
    const pkg = `prepay_id=${prepayId}`;
    const paySign = rsaSign(buildJsapiPayMessage(appId, timeStamp, nonceStr, pkg), this.merchantKey);
    return { appId, timeStamp, nonceStr, package: pkg, signType: 'RSA', paySign };
  }

  private mismatch(eventType: string, payload: Record<string, unknown>): string | undefined {
    if (payload.mchid !== this.config.mchid) {
      return `mchid ${String(payload.mchid)} is not this merchant's ${this.config.mchid}`;
    }
    if (eventType.startsWith('TRANSACTION.') && payload.appid !== this.config.appid) {
      return `appid ${String(payload.appid)} is not this merchant's ${this.config.appid}`;
    }
    return undefined;
  }
}

/** The normalized event, or `undefined` when a verified resource lacks what its event type must carry. */
function toEvent(eventType: string, p: Record<string, unknown>): NotificationEvent | undefined {
  if (eventType === 'TRANSACTION.SUCCESS') {
    const t = p as unknown as Transaction;
    if (typeof t.out_trade_no !== 'string' || !Number.isSafeInteger(t.amount?.total)) return undefined;
    if (t.trade_state !== 'SUCCESS') {
      return { type: 'ignored', paymentNo: t.out_trade_no, reason: `trade_state ${String(t.trade_state)}` };
    }
    return {
      type: 'payment',
      status: 'SUCCEEDED',
      paymentNo: t.out_trade_no,
      providerTransactionId: t.transaction_id,
      amount: t.amount?.total,
      currency: t.amount?.currency,
      paidAt: t.success_time ? new Date(t.success_time) : undefined,
    };
  }
  const refundState = REFUND_EVENT_STATE[eventType];
  if (refundState) {
    const r = p as unknown as RefundNotificationResource;
    if (typeof r.out_refund_no !== 'string') return undefined;
    return {
      type: 'refund',
      refundNo: r.out_refund_no,
      paymentNo: r.out_trade_no,
      status: refundState,
      amount: r.amount?.refund,
      providerRefundId: r.refund_id,
    };
  }
  return {
    type: 'ignored',
    paymentNo: typeof p.out_trade_no === 'string' ? p.out_trade_no : undefined,
    reason: `event ${eventType}`,
  };
}

function refundResult(data: Refund): RefundResult {
  const state = REFUND_STATE[data?.status];
  if (!state) throw rejected(`unknown refund status ${String(data?.status)}`, 'UNKNOWN_REFUND_STATUS');
  return { state, providerRefundId: data.refund_id, raw: data };
}

function rejected(message: string, code: string): ProviderRejectedError {
  return new ProviderRejectedError(message, PROVIDER, code);
}

function str(v: unknown): string {
  if (typeof v !== 'string' || v === '') throw rejected('WeChat Pay answer lacks an expected field', 'INVALID_RESPONSE');
  return v;
}
