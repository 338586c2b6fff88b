/**
 * Alipay OpenAPI simulator: Alipay's side of the gateway protocol (RSA2, public-key mode) for development and tests.
 * Mounted by the app at `/simulator/alipay`; adapters reach it only through
 * `ALIPAY_GATEWAY=<publicBaseUrl>/simulator/alipay/gateway.do`.
 *
 * What it simulates
 * - `GET|POST /gateway.do` as alipay-sdk v4 calls it: common parameters in the query string, `biz_content` in the
 *   form body (both places are read). Requests are checked like Alipay does: method, registered app_id, sign_type
 *   RSA2, charset utf-8, `timestamp` China time within ±15 minutes (a host-local timestamp from a UTC host is 8 h off
 *   and refused), and the app's RSA2 signature over every parameter but `sign` and empty values, sorted, `k=v&…`.
 *   Every answer is `{"<method>_response":{…},"sign":"…"}` signed by this simulator's own key over the exact text of
 *   the response object (`/` written as `\/`, as Alipay does), refusals included (`40002 isv.invalid-signature`…).
 * - `alipay.trade.precreate` → `qr_code` (`https://qr.alipay.com/bax…`); an identical re-create answers the same QR,
 *   a different one `ACQ.CONTEXT_INCONSISTENT`. Until the QR is scanned Alipay does not know the trade: query and
 *   close answer `40004 ACQ.TRADE_NOT_EXIST`, and closing therefore does not stop the QR from being paid until its
 *   `time_expire`. Scanning (the phone page) makes it WAIT_BUYER_PAY.
 * - `alipay.trade.page.pay` / `alipay.trade.wap.pay`: the signed browser URL (GET, or the SDK's auto-submitting POST
 *   form) is verified and opens a cashier page (the trade is then WAIT_BUYER_PAY); Pay returns the browser to
 *   `return_url` with signed synchronous-return parameters (`method=alipay.trade.page.pay.return`, …).
 * - `alipay.trade.query`, `alipay.trade.close` (TRADE_CLOSED, notified; anything not WAIT_BUYER_PAY:
 *   `ACQ.TRADE_STATUS_ERROR`), `alipay.trade.refund` (synchronous; the same out_request_no again is the same refund
 *   with `fund_change: N`, a different amount under it `ACQ.DISCORDANT_REPEAT_REQUEST`, more than what remains
 *   `ACQ.REFUND_AMT_NOT_EQUAL_TOTAL`), `alipay.trade.fastpay.refund.query`; `time_expire` / `timeout_express`
 *   (default 2 h) after which an unpaid trade is closed and cannot be paid.
 * - Refund outcomes scripted by `setRefundBehaviour` (or `POST /control { refundBehaviour, refundDelayMs }`):
 *   `success` (default) refunds at once (`fund_change: Y`); with a delay the refund is accepted but still processing
 *   (`fund_change: N`; the refund query answers without `refund_status`, as Alipay does for a refund not done) and
 *   succeeds, and is notified, that much later. `fail` refuses it outright, as Alipay does when the merchant's
 *   balance cannot cover it (`40004 ACQ.SELLER_BALANCE_NOT_ENOUGH`): nothing is refunded or notified.
 * - Bills: `alipay.data.dataservice.bill.downloadurl.query` (`bill_type=trade`, a `bill_date` up to today: bills are
 *   ready at once here, Alipay publishes a day's the next morning) → `bill_download_url` (unsigned, valid 30 s), or
 *   `isp.bill_not_exist` for a day without transactions; the download is a zip of GBK CSV (`业务明细` and its
 *   `(汇总)`) listing every payment and completed refund of that China day, as processed here.
 *   `injectBillDiscrepancy` / `corruptBill` (or `POST /bill-faults`) make bills disagree with what was processed, or
 *   corrupt them (`shared/bill-faults.ts`).
 * - People and scripts: `GET /scan?qr_code=…` (the phone), `POST /pay` `{ qr_code | out_trade_no, outcome:
 *   SUCCESS | FAIL, notify? }`, `POST /cashier` (the cashier page's form), `GET /notifications` (delivery log).
 *   FAIL is a failed attempt as at Alipay: the trade stays WAIT_BUYER_PAY (payable until expiry), nothing is notified.
 * - Notifications: form-encoded POSTs to the trade's notify_url, signed by this simulator's key over every parameter
 *   but `sign` and `sign_type`: TRADE_SUCCESS on payment, TRADE_CLOSED on close, TRADE_SUCCESS with `refund_fee`
 *   (cumulative), `gmt_refund`, `out_biz_no` on a partial refund and TRADE_CLOSED with them (and `gmt_close`) on the
 *   refund that empties the trade. Retried on Alipay's schedule (4m, 10m, 10m, 1h, 2h, 6h, 15h; ÷ timeScale) until
 *   the body is exactly `success`; every retry has a fresh `notify_time` and signature and the same `notify_id`.
 *
 * What it does not simulate
 * - Certificate mode (app_cert_sn / alipay_root_cert_sn), AES content encryption, GBK requests, RSA (SHA1) signing.
 * - TRADE_CLOSED notifications for trades that merely expire, TRADE_FINISHED, refunds that fail after being accepted, monthly and
 *   `signcustomer` bills, app payments, barcode payments, rate limits.
 *
 * The router parses bodies itself with `express.raw`; mount it before any app-wide body parser.
 */
import { createPrivateKey, createPublicKey, randomBytes, randomInt, type KeyObject } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type { AlipayConfig } from '../../payments/providers/alipay/config';
import {
  decodeForm,
  formatChinaDateTime,
  parseChinaDateTime,
  requestSignContent,
  responseKey,
  rsaVerify,
  signedResponseText,
  signNotifyParams,
  SIGN_TYPE,
} from '../../payments/providers/alipay/crypto';
import type { ProductCode, TradeStatus } from '../../payments/providers/alipay/types';
import { fromMajorString, toMajorString } from '../../shared/money';
import { BillFaults, type BillCorruption, type BillDiscrepancy } from '../shared/bill-faults';
import { renderCashierPage } from '../shared/cashier';
import { chinaDay } from '../shared/china-day';
import { mountControlRoutes, RefundControl } from '../shared/control';
import { NotificationDispatcher, silentLogger, type DeliveryAttempt, type SimulatorLogger } from '../shared/delivery';
import { renderPhonePage } from '../shared/html';
import { isHttpUrl, isObject, parseJson, str } from '../shared/request';
import { generateRsaKeyPair, randomDigits } from '../shared/credentials';
import { renderAlipayBillZip, type AlipayBillLine } from './bill';
import type { AlipayAppCredentials } from './credentials';
import { buildNotification, newNotifyId, type BuildNotificationInput, type BuiltNotification } from './notifications';
import { AlipayStore, type AppRecord, type AppRegistration, type StoredRefund, type StoredTrade, type TradeMethod } from './store';

/** Alipay's notification retry schedule (opendocs.alipay.com/open/270/105902: 4m, 10m, 10m, 1h, 2h, 6h, 15h). */
export const ALIPAY_RETRY_SCHEDULE_MS: readonly number[] = [240, 600, 600, 3600, 7200, 21600, 54000].map((s) => s * 1000);

export const ALIPAY_SIMULATOR_MOUNT = '/simulator/alipay';

/** Unpaid trades without `time_expire` / `timeout_express` stop being payable after this. */
const DEFAULT_EXPIRY_MS = 2 * 3600_000;
/** How far a request `timestamp` may be from the simulator's clock. */
const TIMESTAMP_TOLERANCE_MS = 15 * 60_000;
const OUT_TRADE_NO = /^[0-9A-Za-z_\-]{1,64}$/;
const OUT_REQUEST_NO = /^[0-9A-Za-z_\-]{1,64}$/;
const AMOUNT = /^\d{1,9}(\.\d{1,2})?$/;
const MAX_AMOUNT_FEN = 10_000_000_000;
const BRAND_COLOR = '#1677ff';
/** A bill_download_url works this long (Alipay: 30 seconds). */
const BILL_URL_TTL_MS = 30_000;

const PAGE_METHODS: Readonly<Record<string, ProductCode>> = {
  'alipay.trade.page.pay': 'FAST_INSTANT_TRADE_PAY',
  'alipay.trade.wap.pay': 'QUICK_WAP_WAY',
};

export interface AlipaySimulatorOptions {
  /** External base URL of the app serving the router, e.g. `http://127.0.0.1:4000`. */
  publicBaseUrl: string;
  /** Where the app mounts `router`. Default `/simulator/alipay`. */
  mountPath?: string;
  /** Notification retries run this many times faster. Default 1. */
  timeScale?: number;
  logger?: SimulatorLogger;
  /** Use this Alipay key (PEM) instead of generating one. */
  privateKeyPem?: string;
  /** How long a notify URL may take to answer. Default 5000 ms. */
  replyTimeoutMs?: number;
}

export type PayOutcome = 'SUCCESS' | 'FAIL';

export interface PayInput {
  qr_code?: string;
  out_trade_no?: string;
  app_id?: string;
  outcome: PayOutcome;
  /** Default true; false records the payment without notifying (for query-fallback tests). */
  notify?: boolean;
}

export type PayResult =
  | { ok: true; out_trade_no: string; trade_no: string; trade_status: TradeStatus; trade: StoredTrade }
  | { ok: false; status: 400 | 404 | 409; code: string; message: string };

/** How later refunds end: `success` (after `delayMs`, processing until then) or `fail` (refused outright). */
export type RefundBehaviour = 'success' | 'fail';

export interface AlipaySimulator {
  /** Mount at `mountPath` (default `/simulator/alipay`). */
  readonly router: Router;
  /** Alipay's public key (SPKI PEM), generated at start: what merchants verify answers and notifications with. */
  readonly publicKeyPem: string;
  /** `${publicBaseUrl}${mountPath}`. */
  readonly baseUrl: string;
  /** `${baseUrl}/gateway.do`: the adapter's `gateway`. */
  readonly gatewayUrl: string;
  readonly store: AlipayStore;
  /** Every notification delivery attempt, oldest first. */
  readonly notifications: readonly DeliveryAttempt[];
  registerApp(app: AppRegistration): void;
  /** An `AlipayConfig` for `AlipayProvider` pointing at this simulator (registers the app too). */
  adapterConfig(credentials: AlipayAppCredentials, overrides?: Partial<AlipayConfig>): AlipayConfig;
  /** The phone page for a precreated `qr_code`. */
  scanUrl(qrCode: string): string;
  /** What `POST /pay` does. */
  pay(input: PayInput): PayResult;
  /** The parameters with `sign_type=RSA2` and `sign` by this simulator's key (notification / return rule). */
  signNotification(params: Record<string, string>): Record<string, string>;
  /** A complete notification (defaults + params), signed by this simulator's key and form-encoded. */
  buildNotification(input: BuildNotificationInput): BuiltNotification;
  /** Sends a notification sent before once more (same notify_id, fresh notify_time and signature), with retries. */
  redeliver(notifyId: string): boolean;
  /**
   * Makes later bills disagree with what was processed (`shared/bill-faults.ts`), until `clearBillFaults`. Alipay
   * bills have no status column (every line is a completed payment or refund): `status` is refused.
   */
  injectBillDiscrepancy(d: BillDiscrepancy): void;
  /** Makes later bill downloads untrustworthy: `truncate`, `columns` or `encoding` (Alipay publishes no hash). */
  corruptBill(mode: BillCorruption | null): void;
  clearBillFaults(): void;
  /** How later refunds end; `success` with `delayMs` > 0 stays processing (fund_change N) that long. */
  setRefundBehaviour(behaviour: RefundBehaviour, delayMs?: number): void;
  /** Cancels pending deliveries and refund timers. */
  close(): void;
}

/** A `*_response` object. */
type Answer = { code: string; msg: string; sub_code?: string; sub_msg?: string } & Record<string, unknown>;

const ok = (body: Record<string, unknown> = {}): Answer => ({ code: '10000', msg: 'Success', ...body });
const missing = (sub_code: string, sub_msg: string): Answer => ({ code: '40001', msg: 'Missing Required Arguments', sub_code, sub_msg });
const invalid = (sub_code: string, sub_msg: string): Answer => ({ code: '40002', msg: 'Invalid Arguments', sub_code, sub_msg });
const business = (sub_code: string, sub_msg: string, extra: Record<string, unknown> = {}): Answer => ({
  code: '40004',
  msg: 'Business Failed',
  sub_code,
  sub_msg,
  ...extra,
});

interface SentNotification {
  notifyId: string;
  url: string;
  label: string;
  params: Record<string, string>;
}

interface Authenticated {
  app: AppRecord;
  biz: Record<string, unknown>;
}

export function createAlipaySimulator(options: AlipaySimulatorOptions): AlipaySimulator {
  const mountPath = (options.mountPath ?? ALIPAY_SIMULATOR_MOUNT).replace(/\/+$/, '');
  const baseUrl = `${options.publicBaseUrl.replace(/\/+$/, '')}${mountPath}`;
  const gatewayUrl = `${baseUrl}/gateway.do`;
  const logger = options.logger ?? silentLogger;

  const privateKey: KeyObject = createPrivateKey(options.privateKeyPem ?? generateRsaKeyPair().privateKey);
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();

  const store = new AlipayStore();
  const dispatcher = new NotificationDispatcher({
    retryScheduleMs: ALIPAY_RETRY_SCHEDULE_MS,
    timeScale: options.timeScale,
    replyTimeoutMs: options.replyTimeoutMs,
    logger,
  });
  const sent = new Map<string, SentNotification>();
  const billFaults = new BillFaults(['truncate', 'columns', 'encoding']);
  const billFiles = new Map<string, { bytes: Buffer; name: string; expiresAt: number }>();
  const refunds = new RefundControl<RefundBehaviour>(['success', 'fail']);

  // ---- notifications -------------------------------------------------------------------------------------------

  function deliver(n: SentNotification): void {
    dispatcher.dispatch({
      notificationId: n.notifyId,
      label: n.label,
      url: n.url,
      build: () => {
        const built = buildNotification({ params: n.params, notifyId: n.notifyId }, privateKey);
        return { headers: built.headers, body: built.rawBody };
      },
      // Alipay stops only on exactly these 7 characters.
      acknowledged: (status, body) => status >= 200 && status < 300 && body === 'success',
    });
  }

  function tradeParams(t: StoredTrade): Record<string, string> {
    const total = toMajorString(t.total);
    const paid = t.gmt_payment ? total : '0.00';
    const p: Record<string, string> = {
      app_id: t.appId,
      auth_app_id: t.appId,
      seller_id: t.sellerId,
      trade_no: t.trade_no ?? '',
      out_trade_no: t.out_trade_no,
      subject: t.subject,
      total_amount: total,
      receipt_amount: paid,
      invoice_amount: paid,
      buyer_pay_amount: paid,
      point_amount: '0.00',
      buyer_id: t.buyer_id ?? '',
      buyer_logon_id: t.buyer_logon_id ?? '',
      trade_status: t.status,
    };
    if (t.gmt_create) p.gmt_create = formatChinaDateTime(t.gmt_create);
    if (t.gmt_payment) {
      p.gmt_payment = formatChinaDateTime(t.gmt_payment);
      p.fund_bill_list = JSON.stringify([{ amount: total, fundChannel: 'ALIPAYACCOUNT' }]);
    }
    if (t.gmt_close) p.gmt_close = formatChinaDateTime(t.gmt_close);
    return p;
  }

  function notify(t: StoredTrade, label: string, extra: Record<string, string> = {}, url = t.notify_url): void {
    if (!url) return;
    const n: SentNotification = { notifyId: newNotifyId(), url, label, params: { ...tradeParams(t), ...extra } };
    sent.set(n.notifyId, n);
    deliver(n);
  }

  // ---- the customer's phone and the cashier -------------------------------------------------------------------

  function pay(input: PayInput): PayResult {
    const t = store.find(input);
    if (!t) return { ok: false, status: 404, code: 'ACQ.TRADE_NOT_EXIST', message: '交易不存在' };
    if (t.gmt_payment) return { ok: false, status: 409, code: 'ACQ.TRADE_HAS_SUCCESS', message: '交易已被支付' };
    if (!AlipayStore.payable(t)) return { ok: false, status: 409, code: 'ACQ.TRADE_HAS_CLOSE', message: '交易已经关闭' };
    if (input.outcome !== 'SUCCESS' && input.outcome !== 'FAIL') {
      return { ok: false, status: 400, code: 'INVALID_PARAMETER', message: 'outcome must be SUCCESS or FAIL' };
    }
    const now = new Date();
    store.open(t, now);
    if (input.outcome === 'SUCCESS') {
      store.markPaid(t, now);
      logger.info({ out_trade_no: t.out_trade_no, trade_no: t.trade_no }, 'alipay simulator: paid');
      if (input.notify !== false) notify(t, 'TRADE_SUCCESS');
    }
    return { ok: true, out_trade_no: t.out_trade_no, trade_no: t.trade_no!, trade_status: t.status as TradeStatus, trade: t };
  }

  function pageBasics(t: StoredTrade) {
    return {
      brandColor: BRAND_COLOR,
      merchant: store.app(t.appId)?.name ?? t.sellerId,
      description: t.subject,
      amountText: `¥${toMajorString(t.total)}`,
      details: [
        ['Order', t.out_trade_no],
        ['Expires', formatChinaDateTime(new Date(t.expiresAt))],
      ] as Array<[string, string]>,
    };
  }

  function tradeNotice(t: StoredTrade): string | undefined {
    if (t.gmt_payment) return 'This order has been paid.';
    if (!AlipayStore.payable(t)) return 'This order is closed and can no longer be paid.';
    return undefined;
  }

  function phonePage(t: StoredTrade | undefined, qrCode: string): { status: number; html: string } {
    const brand = 'Alipay (simulator)';
    const buttons = [
      { label: 'Pay', fields: { outcome: 'SUCCESS' }, primary: true },
      { label: 'Fail', fields: { outcome: 'FAIL' } },
    ];
    if (!t) {
      const html = renderPhonePage({ brand, brandColor: BRAND_COLOR, merchant: '—', description: '', amountText: '', actionUrl: 'pay', payload: {}, buttons: [], notice: 'Unknown or invalid QR code.' });
      return { status: 404, html };
    }
    // Scanning is what makes the trade known to Alipay (query: WAIT_BUYER_PAY instead of ACQ.TRADE_NOT_EXIST).
    if (AlipayStore.payable(t)) store.open(t);
    const html = renderPhonePage({ ...pageBasics(t), brand, actionUrl: 'pay', payload: { qr_code: qrCode }, buttons, notice: tradeNotice(t) });
    return { status: 200, html };
  }

  function cashierPage(t: StoredTrade, notice = tradeNotice(t)): string {
    return renderCashierPage({
      ...pageBasics(t),
      brand: t.method === 'alipay.trade.wap.pay' ? 'Alipay WAP cashier (simulator)' : 'Alipay cashier (simulator)',
      action: 'cashier',
      hidden: { app_id: t.appId, out_trade_no: t.out_trade_no },
      buttons: [
        { label: 'Pay', name: 'outcome', value: 'SUCCESS', primary: true },
        { label: 'Fail', name: 'outcome', value: 'FAIL' },
      ],
      notice,
      links: t.return_url && notice ? [{ label: 'Back to the merchant', href: t.quit_url ?? t.return_url }] : [],
    });
  }

  function errorPage(answer: Answer): string {
    return renderCashierPage({
      brand: 'Alipay cashier (simulator)',
      brandColor: BRAND_COLOR,
      merchant: '—',
      description: '',
      amountText: '',
      notice: `${answer.sub_msg ?? answer.msg}`,
      errorCode: answer.sub_code ?? answer.code,
    });
  }

  /** `return_url` plus the signed synchronous-return parameters Alipay appends after a page/WAP payment. */
  function returnUrl(t: StoredTrade): string {
    const params = signNotifyParams(
      {
        charset: 'utf-8',
        out_trade_no: t.out_trade_no,
        method: `${t.method}.return`,
        total_amount: toMajorString(t.total),
        trade_no: t.trade_no ?? '',
        auth_app_id: t.appId,
        version: '1.0',
        app_id: t.appId,
        seller_id: t.sellerId,
        timestamp: formatChinaDateTime(new Date()),
      },
      privateKey,
    );
    const url = new URL(t.return_url!);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url.toString();
  }

  // ---- the gateway ---------------------------------------------------------------------------------------------

  function authenticate(params: Record<string, string>): Authenticated | Answer {
    const app = params.app_id ? store.app(params.app_id) : undefined;
    if (!params.app_id) return missing('isv.missing-app-id', '缺少AppID参数');
    if (!app) return invalid('isv.invalid-app-id', '无效的AppID参数');
    if (!params.sign) return missing('isv.missing-signature', '缺少签名参数');
    if (!params.sign_type) return missing('isv.missing-signature-type', '缺少签名类型参数');
    if (params.sign_type !== SIGN_TYPE) return invalid('isv.invalid-signature-type', '无效的签名类型参数（模拟器只支持 RSA2）');
    if (params.charset && params.charset.toLowerCase() !== 'utf-8') return invalid('isv.invalid-charset', '字符集错误（模拟器只支持 utf-8）');
    if (params.version && params.version !== '1.0') return invalid('isv.invalid-version', '无效的版本号');
    if (!params.timestamp) return missing('isv.missing-timestamp', '缺少时间戳参数');
    const ts = parseChinaDateTime(params.timestamp);
    if (!ts || Math.abs(ts.getTime() - Date.now()) > TIMESTAMP_TOLERANCE_MS) {
      return invalid('isv.invalid-timestamp', `非法的时间戳参数：须为北京时间 yyyy-MM-dd HH:mm:ss，且与当前时间相差不超过 15 分钟（当前 ${formatChinaDateTime(new Date())}）`);
    }
    const content = requestSignContent(params);
    if (!rsaVerify(content, params.sign, app.appPublicKey)) {
      return invalid('isv.invalid-signature', `验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：${content}`);
    }
    let biz: unknown = {};
    if (params.biz_content) {
      try {
        biz = JSON.parse(params.biz_content);
      } catch {
        return invalid('isv.invalid-parameter', 'biz_content 不是合法的 JSON');
      }
    }
    if (!isObject(biz)) return invalid('isv.invalid-parameter', 'biz_content 必须是 JSON 对象');
    return { app, biz };
  }

  interface CreateRequest {
    out_trade_no: string;
    total: number;
    subject: string;
    product_code: ProductCode;
    expiresAt: number;
    notify_url?: string;
    quit_url?: string;
  }

  function validateCreate(biz: Record<string, unknown>, params: Record<string, string>, productCode: ProductCode): CreateRequest | Answer {
    const outTradeNo = biz.out_trade_no;
    if (typeof outTradeNo !== 'string' || !OUT_TRADE_NO.test(outTradeNo)) {
      return business('ACQ.INVALID_PARAMETER', '参数无效：out_trade_no 须为 64 个字符以内的字母、数字、下划线或连字符');
    }
    const amount = biz.total_amount;
    if (typeof amount !== 'string' || !AMOUNT.test(amount)) return business('ACQ.INVALID_PARAMETER', '参数无效：total_amount 须为以元为单位、最多两位小数的金额');
    const total = fromMajorString(amount);
    if (total < 1) return business('ACQ.INVALID_PARAMETER', '参数无效：total_amount 不能小于 0.01');
    if (total > MAX_AMOUNT_FEN) return business('ACQ.TOTAL_FEE_EXCEED', '订单总金额超过限额');
    if (typeof biz.subject !== 'string' || biz.subject === '' || Array.from(biz.subject).length > 256) {
      return business('ACQ.INVALID_PARAMETER', '参数无效：subject 必填且不超过 256 个字符');
    }
    if (biz.product_code !== undefined && biz.product_code !== productCode) {
      return business('ACQ.INVALID_PARAMETER', `参数无效：product_code 须为 ${productCode}`);
    }
    let expiresAt = Date.now() + DEFAULT_EXPIRY_MS;
    if (biz.time_expire !== undefined) {
      const at = typeof biz.time_expire === 'string' ? parseChinaDateTime(biz.time_expire) : undefined;
      if (!at) return business('ACQ.INVALID_PARAMETER', '参数无效：time_expire 须为 yyyy-MM-dd HH:mm:ss');
      expiresAt = at.getTime();
    } else if (biz.timeout_express !== undefined) {
      const m = typeof biz.timeout_express === 'string' ? /^(\d{1,5})([mhd])$/.exec(biz.timeout_express) : null;
      if (!m) return business('ACQ.INVALID_PARAMETER', '参数无效：timeout_express 取值如 90m、2h、1d');
      expiresAt = Date.now() + Number(m[1]) * { m: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
    }
    if (params.notify_url !== undefined && !isHttpUrl(params.notify_url)) return invalid('isv.invalid-notify-url', 'notify_url 须为 http(s) 地址');
    return {
      out_trade_no: outTradeNo,
      total,
      subject: biz.subject,
      product_code: productCode,
      expiresAt,
      notify_url: params.notify_url,
      quit_url: typeof biz.quit_url === 'string' ? biz.quit_url : undefined,
    };
  }

  /** The trade for a create request: the existing one when the request is the same, else a new one. */
  function createTrade(app: AppRecord, method: TradeMethod, req: CreateRequest): StoredTrade | Answer {
    const fingerprint = JSON.stringify([method, req.total, req.subject, req.product_code]);
    const existing = store.trade(app.appId, req.out_trade_no);
    if (existing) {
      if (existing.fingerprint !== fingerprint) return business('ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
      if (existing.gmt_payment) return business('ACQ.TRADE_HAS_SUCCESS', '交易已被支付');
      if (existing.status === 'TRADE_CLOSED') return business('ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
      return existing;
    }
    const t: StoredTrade = {
      appId: app.appId,
      sellerId: app.sellerId,
      out_trade_no: req.out_trade_no,
      method,
      product_code: req.product_code,
      subject: req.subject,
      total: req.total,
      notify_url: req.notify_url,
      quit_url: req.quit_url,
      expiresAt: req.expiresAt,
      fingerprint,
      status: 'UNSCANNED',
    };
    if (method === 'alipay.trade.precreate') t.qr_code = `https://qr.alipay.com/bax0${randomDigits(4)}${randomBase36(16)}`;
    store.addTrade(t);
    return t;
  }

  function lookup(app: AppRecord, biz: Record<string, unknown>): StoredTrade | Answer {
    const outTradeNo = typeof biz.out_trade_no === 'string' && biz.out_trade_no ? biz.out_trade_no : undefined;
    const tradeNo = typeof biz.trade_no === 'string' && biz.trade_no ? biz.trade_no : undefined;
    if (!outTradeNo && !tradeNo) return business('ACQ.INVALID_PARAMETER', '参数无效：out_trade_no 与 trade_no 不能同时为空');
    const t = tradeNo ? store.tradeByNo(app.appId, tradeNo) : store.trade(app.appId, outTradeNo!);
    if (!t || t.status === 'UNSCANNED') {
      return business('ACQ.TRADE_NOT_EXIST', '交易不存在', {
        ...(outTradeNo ? { out_trade_no: outTradeNo } : {}),
        buyer_pay_amount: '0.00',
        invoice_amount: '0.00',
        point_amount: '0.00',
        receipt_amount: '0.00',
      });
    }
    return t;
  }

  type Handler = (app: AppRecord, biz: Record<string, unknown>, params: Record<string, string>) => Answer;

  const precreate: Handler = (app, biz, params) => {
    const req = validateCreate(biz, params, 'FACE_TO_FACE_PAYMENT');
    if ('code' in req) return req;
    const t = createTrade(app, 'alipay.trade.precreate', req);
    if ('code' in t) return t;
    logger.info({ out_trade_no: t.out_trade_no, scan: scanUrl(t.qr_code!) }, 'alipay simulator: QR precreated');
    return ok({ out_trade_no: t.out_trade_no, qr_code: t.qr_code });
  };

  const query: Handler = (app, biz) => {
    const t = lookup(app, biz);
    if ('code' in t) return t;
    return ok(AlipayStore.toQuery(t));
  };

  const close: Handler = (app, biz, params) => {
    const t = lookup(app, biz);
    if ('code' in t) return t;
    if (t.status !== 'WAIT_BUYER_PAY') return business('ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
    store.close(t);
    notify(t, 'TRADE_CLOSED', {}, params.notify_url ?? t.notify_url);
    return ok({ trade_no: t.trade_no, out_trade_no: t.out_trade_no });
  };

  const refund: Handler = (app, biz) => {
    const t = lookup(app, biz);
    if ('code' in t) return t;
    const amount = biz.refund_amount;
    if (typeof amount !== 'string' || !AMOUNT.test(amount) || fromMajorString(amount) < 1) {
      return business('ACQ.INVALID_PARAMETER', '参数无效：refund_amount 须为以元为单位、最多两位小数的正金额');
    }
    const fen = fromMajorString(amount);
    const outRequestNo = typeof biz.out_request_no === 'string' && biz.out_request_no ? biz.out_request_no : t.trade_no!;
    if (!OUT_REQUEST_NO.test(outRequestNo)) return business('ACQ.INVALID_PARAMETER', '参数无效：out_request_no 格式错误');
    const answer = (fundChange: 'Y' | 'N', sendBack: number) =>
      ok({
        trade_no: t.trade_no,
        out_trade_no: t.out_trade_no,
        buyer_logon_id: t.buyer_logon_id,
        fund_change: fundChange,
        refund_fee: toMajorString(store.refunded(t)),
        send_back_fee: toMajorString(sendBack),
        gmt_refund_pay: formatChinaDateTime(new Date()),
        buyer_user_id: t.buyer_id,
      });

    const existing = store.refund(app.appId, t.out_trade_no, outRequestNo);
    if (existing) {
      // The same out_request_no again is the same refund: no money moves a second time.
      if (existing.amount !== fen) return business('ACQ.DISCORDANT_REPEAT_REQUEST', '不一致的请求：同一退款请求号的退款金额与之前不同');
      return answer('N', 0);
    }
    if (!t.gmt_payment) return business('ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
    if (t.status === 'TRADE_FINISHED') return business('ACQ.TRADE_HAS_FINISHED', '交易已完结');
    if (fen > t.total - store.committed(t)) return business('ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限');
    if (refunds.behaviour === 'fail') return business('ACQ.SELLER_BALANCE_NOT_ENOUGH', '卖家余额不足');

    const now = new Date();
    const processing = refunds.delayMs > 0;
    const r: StoredRefund = {
      appId: app.appId,
      out_trade_no: t.out_trade_no,
      trade_no: t.trade_no!,
      out_request_no: outRequestNo,
      amount: fen,
      reason: typeof biz.refund_reason === 'string' ? biz.refund_reason : undefined,
      gmt_refund: now,
      status: processing ? 'PROCESSING' : 'SUCCESS',
    };
    store.addRefund(r);
    if (processing) {
      logger.info({ out_trade_no: t.out_trade_no, out_request_no: outRequestNo, amount: fen }, 'alipay simulator: refund processing');
      refunds.later(() => refundDone(t, r, new Date()), refunds.delayMs);
      // Accepted, but no money has moved yet: the merchant must ask the refund query.
      return answer('N', 0);
    }
    refundDone(t, r, now);
    return answer('Y', fen);
  };

  /** A refund's money moves: the trade closes when nothing is left, and the refund is notified. */
  function refundDone(t: StoredTrade, r: StoredRefund, now: Date): void {
    r.status = 'SUCCESS';
    r.gmt_refund = now;
    const refunded = store.refunded(t);
    if (refunded === t.total) store.close(t, now);
    logger.info({ out_trade_no: t.out_trade_no, out_request_no: r.out_request_no, amount: r.amount }, 'alipay simulator: refunded');
    notify(t, `${t.status} refund`, {
      refund_fee: toMajorString(refunded),
      gmt_refund: formatChinaDateTime(now, true),
      out_biz_no: r.out_request_no,
    });
  }

  const refundQuery: Handler = (app, biz) => {
    const outRequestNo = typeof biz.out_request_no === 'string' ? biz.out_request_no : '';
    if (!outRequestNo) return business('ACQ.INVALID_PARAMETER', '参数无效：out_request_no 必填');
    const t = lookup(app, biz);
    if ('code' in t) return t;
    const r = store.refund(app.appId, t.out_trade_no, outRequestNo);
    // Alipay answers a refund it does not know with a bare success (no refund_status): "not refunded (yet)".
    if (!r) return ok({ trade_no: t.trade_no, out_trade_no: t.out_trade_no, out_request_no: outRequestNo });
    const options = Array.isArray(biz.query_options) ? biz.query_options : [];
    const done = r.status !== 'PROCESSING';
    return ok({
      trade_no: t.trade_no,
      out_trade_no: t.out_trade_no,
      out_request_no: outRequestNo,
      total_amount: toMajorString(t.total),
      refund_amount: toMajorString(r.amount),
      // Without refund_status: not refunded yet.
      ...(done ? { refund_status: 'REFUND_SUCCESS' } : {}),
      ...(done && options.includes('gmt_refund_pay') ? { gmt_refund_pay: formatChinaDateTime(r.gmt_refund) } : {}),
    });
  };

  /** The lines of an application's China day: payments made that day, refunds completed that day, then the faults. */
  function billLines(app: AppRecord, date: string): AlipayBillLine[] {
    const { trades, refunds } = store.appRecords(app.appId);
    const byNo = new Map(trades.map((t) => [t.out_trade_no, t]));
    const lines: AlipayBillLine[] = [];
    for (const t of trades) {
      if (!t.gmt_payment || chinaDay(t.gmt_payment) !== date) continue;
      lines.push({
        kind: 'payment',
        paymentNo: t.out_trade_no,
        amount: t.total,
        status: 'TRADE_SUCCESS',
        tradeNo: t.trade_no ?? '',
        subject: t.subject,
        createdAt: t.gmt_create ?? t.gmt_payment,
        at: t.gmt_payment,
        buyer: t.buyer_logon_id ?? '',
      });
    }
    for (const r of refunds) {
      if (r.status === 'PROCESSING' || chinaDay(r.gmt_refund) !== date) continue;
      const t = byNo.get(r.out_trade_no);
      lines.push({
        kind: 'refund',
        paymentNo: r.out_trade_no,
        refundNo: r.out_request_no,
        amount: r.amount,
        status: 'REFUND_SUCCESS',
        tradeNo: r.trade_no,
        subject: t?.subject ?? '',
        createdAt: t?.gmt_create ?? r.gmt_refund,
        at: r.gmt_refund,
        buyer: t?.buyer_logon_id ?? '',
      });
    }
    const today = chinaDay(new Date());
    return billFaults.apply(
      date,
      today,
      lines,
      (d) => ({
        kind: 'payment',
        paymentNo: d.paymentNo,
        amount: d.amount,
        status: 'TRADE_SUCCESS',
        tradeNo: d.transactionId ?? `${today.replace(/-/g, '')}22001${randomDigits(15)}`,
        subject: 'bill-only line (injected)',
        createdAt: new Date(),
        at: new Date(),
        buyer: 'sim***@example.com',
      }),
      () => 'TRADE_CLOSED',
    );
  }

  const billDownloadUrl: Handler = (app, biz) => {
    if (biz.bill_type !== 'trade') return business('isv.invalid-bill-type', '模拟器只提供 bill_type=trade 的账单');
    const date = typeof biz.bill_date === 'string' ? biz.bill_date : '';
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
      return business('isv.invalid-bill-date', '账单日期格式须为 yyyy-MM-dd');
    }
    if (date > chinaDay(new Date())) return business('isv.invalid-bill-date', '账单日期不能晚于今天');
    const lines = billLines(app, date);
    if (lines.length === 0) return business('isp.bill_not_exist', '账单不存在');
    const now = Date.now();
    for (const [id, f] of billFiles) if (f.expiresAt < now) billFiles.delete(id);
    const fileId = randomBytes(16).toString('hex');
    const name = `${app.sellerId}_${date.replace(/-/g, '')}.csv.zip`;
    billFiles.set(fileId, { bytes: renderAlipayBillZip(app.sellerId, date, lines, billFaults.corruptionMode), name, expiresAt: now + BILL_URL_TTL_MS });
    const query = new URLSearchParams({ bizType: 'trade', userId: app.sellerId, fileType: 'csv.zip', bizDates: date.replace(/-/g, ''), downloadFileName: name, fileId });
    return ok({ bill_download_url: `${baseUrl}/downloadBillFile.resource?${query}` });
  };

  const API: Readonly<Record<string, Handler>> = {
    'alipay.data.dataservice.bill.downloadurl.query': billDownloadUrl,
    'alipay.trade.precreate': precreate,
    'alipay.trade.query': query,
    'alipay.trade.close': close,
    'alipay.trade.refund': refund,
    'alipay.trade.fastpay.refund.query': refundQuery,
  };

  function sendSigned(res: Response, key: string, answer: Answer): void {
    res.status(200).set('Content-Type', 'application/json;charset=utf-8').end(Buffer.from(signedResponseText(key, answer, privateKey), 'utf8'));
  }

  /** The browser side of page.pay / wap.pay: verify, create or reopen the trade, show the cashier. */
  function pageGateway(method: string, params: Record<string, string>): { status: number; html: string } {
    const auth = authenticate(params);
    if ('code' in auth) return { status: 400, html: errorPage(auth) };
    const req = validateCreate(auth.biz, params, PAGE_METHODS[method]);
    if ('code' in req) return { status: 400, html: errorPage(req) };
    if (params.return_url !== undefined && !isHttpUrl(params.return_url)) {
      return { status: 400, html: errorPage(invalid('isv.invalid-return-url', 'return_url 须为 http(s) 地址')) };
    }
    const t = createTrade(auth.app, method as TradeMethod, req);
    if ('code' in t) return { status: 400, html: errorPage(t) };
    if (params.return_url) t.return_url = params.return_url;
    if (AlipayStore.payable(t)) store.open(t);
    logger.info({ out_trade_no: t.out_trade_no, method }, 'alipay simulator: cashier opened');
    return { status: 200, html: cashierPage(t) };
  }

  function gateway(req: Request, res: Response): void {
    let params: Record<string, string>;
    try {
      params = requestParams(req);
    } catch (err) {
      sendSigned(res, 'error_response', invalid('isv.invalid-parameter', (err as Error).message));
      return;
    }
    const method = params.method;
    if (method && PAGE_METHODS[method]) {
      const page = pageGateway(method, params);
      res.status(page.status).type('html').send(page.html);
      return;
    }
    if (!method) return sendSigned(res, 'error_response', missing('isv.missing-method', '缺少方法名参数'));
    const handler = API[method];
    if (!handler) return sendSigned(res, 'error_response', invalid('isv.invalid-method', '不存在的方法名'));
    let answer: Answer;
    try {
      const auth = authenticate(params);
      answer = 'code' in auth ? auth : handler(auth.app, auth.biz, params);
    } catch (err) {
      logger.error({ err, method }, 'alipay simulator: handler failed');
      answer = { code: '20000', msg: 'Service Currently Unavailable', sub_code: 'isp.unknow-error', sub_msg: '系统繁忙' };
    }
    sendSigned(res, responseKey(method), answer);
  }

  // ---- router --------------------------------------------------------------------------------------------------

  const router = express.Router();
  router.use(express.raw({ type: '*/*', limit: '1mb' }));

  router.get('/gateway.do', gateway);
  router.post('/gateway.do', gateway);

  router.get('/scan', (req, res) => {
    const qrCode = typeof req.query.qr_code === 'string' ? req.query.qr_code : '';
    const page = phonePage(qrCode ? store.find({ qr_code: qrCode }) : undefined, qrCode);
    res.status(page.status).type('html').send(page.html);
  });

  router.post('/pay', (req, res) => {
    const body = parseJson(req.body);
    if (!isObject(body) || (body.outcome !== 'SUCCESS' && body.outcome !== 'FAIL') || (!str(body.qr_code) && !str(body.out_trade_no))) {
      res.status(400).json({ code: 'INVALID_PARAMETER', message: 'expected JSON { qr_code | out_trade_no, outcome: SUCCESS | FAIL, notify? }' });
      return;
    }
    const result = pay({
      qr_code: str(body.qr_code),
      out_trade_no: str(body.out_trade_no),
      app_id: str(body.app_id),
      outcome: body.outcome,
      notify: body.notify !== false,
    });
    if (!result.ok) {
      res.status(result.status).json({ code: result.code, message: result.message });
      return;
    }
    // `status` is what the phone page shows.
    const status = body.outcome === 'SUCCESS' ? result.trade_status : 'Payment failed';
    res.status(200).json({ out_trade_no: result.out_trade_no, trade_no: result.trade_no, trade_status: result.trade_status, status });
  });

  router.post('/cashier', (req, res) => {
    const form = formParams(req.body);
    const outcome = form.outcome === 'SUCCESS' || form.outcome === 'FAIL' ? form.outcome : undefined;
    const t = form.out_trade_no ? store.find({ out_trade_no: form.out_trade_no, app_id: form.app_id }) : undefined;
    if (!t || !outcome) {
      res.status(400).type('html').send(errorPage(business('ACQ.TRADE_NOT_EXIST', '交易不存在')));
      return;
    }
    const result = pay({ out_trade_no: t.out_trade_no, app_id: t.appId, outcome });
    if (!result.ok) {
      res.status(result.status).type('html').send(cashierPage(t, `${result.message} (${result.code})`));
      return;
    }
    if (outcome === 'FAIL') {
      res.status(200).type('html').send(cashierPage(t, 'Payment failed. The order stays payable until it expires.'));
      return;
    }
    if (t.return_url) {
      res.redirect(303, returnUrl(t));
      return;
    }
    res.status(200).type('html').send(cashierPage(t, 'Paid.'));
  });

  /** The bill file behind a bill_download_url: no signature, no authentication, gone after 30 s (as at Alipay). */
  router.get('/downloadBillFile.resource', (req, res) => {
    const file = billFiles.get(typeof req.query.fileId === 'string' ? req.query.fileId : '');
    if (!file || file.expiresAt < Date.now()) {
      res.status(404).type('text/plain').send('bill file not found or expired');
      return;
    }
    res.status(200).set({ 'Content-Type': 'application/oct-stream', 'Content-Disposition': `attachment; filename="${file.name}"` }).end(file.bytes);
  });

  mountControlRoutes(router, {
    invalidCode: 'INVALID_PARAMETER',
    refunds,
    invalidBehaviour: 'refundBehaviour: success | fail; refundDelayMs ≥ 0',
    invalidDelay: 'refundBehaviour: success | fail; refundDelayMs ≥ 0',
    dispatcher,
    billFaults,
    checkBillFaults: (body) => {
      if (isObject(body) && isObject(body.inject) && body.inject.kind === 'status') throw new Error('Alipay bills have no status column');
    },
  });

  // ---- the rest of the handle ----------------------------------------------------------------------------------

  function registerApp(a: AppRegistration): void {
    store.registerApp(a);
  }

  function scanUrl(qrCode: string): string {
    return `${baseUrl}/scan?qr_code=${encodeURIComponent(qrCode)}`;
  }

  return {
    router,
    publicKeyPem,
    baseUrl,
    gatewayUrl,
    store,
    get notifications() {
      return dispatcher.attempts;
    },
    registerApp,
    adapterConfig(credentials, overrides = {}) {
      registerApp({ appId: credentials.appId, appPublicKey: credentials.appPublicKey, sellerId: credentials.sellerId });
      return {
        appId: credentials.appId,
        privateKey: credentials.appPrivateKey,
        alipayPublicKey: publicKeyPem,
        gateway: gatewayUrl,
        sellerId: credentials.sellerId,
        ...overrides,
      };
    },
    scanUrl,
    pay,
    signNotification: (params) => signNotifyParams(params, privateKey),
    buildNotification: (input) => buildNotification(input, privateKey),
    redeliver(notifyId) {
      const n = sent.get(notifyId);
      if (!n) return false;
      deliver(n);
      return true;
    },
    injectBillDiscrepancy(d) {
      if (d.kind === 'status') throw new Error('Alipay bills have no status column: every line is a completed payment or refund');
      billFaults.inject(d);
    },
    corruptBill: (mode) => billFaults.corrupt(mode),
    clearBillFaults: () => billFaults.clear(),
    setRefundBehaviour: (behaviour, delayMs) => refunds.set(behaviour, delayMs),
    close() {
      dispatcher.close();
      refunds.close();
    },
  };
}

// ---- request parsing -------------------------------------------------------------------------------------------

/** Common parameters from the query string and business ones from a form body (or an app-wide parser's object). */
function requestParams(req: Request): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [k, v] of new URL(req.originalUrl, 'http://simulator').searchParams) params[k] = v;
  Object.assign(params, formParams(req.body, params.charset));
  return params;
}

function formParams(body: unknown, charset?: string): Record<string, string> {
  if (Buffer.isBuffer(body)) return body.length ? decodeForm(body, charset || 'utf-8').params : {};
  if (!isObject(body)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
  return out;
}

function randomBase36(n: number): string {
  let s = '';
  while (s.length < n) s += randomInt(36).toString(36);
  return s;
}
