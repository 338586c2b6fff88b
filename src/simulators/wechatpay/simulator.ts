/**
 * WeChat Pay API v3 simulator: WeChat Pay's side of the protocol, byte for byte, for development and tests
 * (WeChat Pay has no v3 sandbox). Mounted by the app at `/simulator/wechatpay`; adapters reach it only through
 * `WECHATPAY_BASE_URL=<publicBaseUrl>/simulator/wechatpay`.
 *
 * What it simulates
 * - "WeChat Pay public key" mode: its own RSA 2048 key (`publicKeyPem`, id `PUB_KEY_ID_…`) signs every answer
 *   (`Wechatpay-Timestamp/Nonce/Signature/Serial`, `Request-ID`), errors included.
 * - Request authentication: `Authorization: WECHATPAY2-SHA256-RSA2048 …` verified against the registered
 *   merchant's public key and certificate serial, over `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n` where
 *   PATH?QUERY is the request target exactly as sent (`req.originalUrl`, mount prefix included, because that is
 *   what the client signed) and BODY the raw bytes; ±300 s clock window. Failures: 401 `SIGN_ERROR`.
 * - Native / JSAPI / H5 prepay with WeChat's field checks, idempotent re-create of the same out_trade_no with the
 *   same body, `INVALID_REQUEST` ("201 商户订单号重复") when the body differs; query by out_trade_no or
 *   transaction_id; close (204; closing a paid order: 400 `ORDER_PAID`); `time_expire` (default 2 h) after which
 *   an unpaid order reads CLOSED and cannot be paid.
 * - Refunds: same out_refund_no → same refund, never a second one; more than what remains refundable → 400
 *   `INVALID_REQUEST`; outcome scripted by `setRefundBehaviour` (success / processing / abnormal, optional delay).
 * - The customer's phone: `GET /scan?code_url=…`, `GET /h5?prepay_id=…` pages and `POST /pay`.
 * - Bills: `GET /v3/bill/tradebill?bill_date=&bill_type=ALL[&tar_type=GZIP]` → `{ hash_type: SHA1, hash_value,
 *   download_url }` for any day up to today (bills are ready at once here; WeChat publishes a day's bill the next
 *   morning), `NO_STATEMENT_EXIST` for a day without transactions; `GET /v3/billdownload/file?token=…` (signed
 *   request, valid 30 s) answers the bill, unsigned, gzip when asked: every payment that succeeded that China day
 *   and every refund made that day, as processed here. `injectBillDiscrepancy` / `corruptBill` (or
 *   `POST /bill-faults`) make bills disagree with what was processed, or corrupt them (`shared/bill-faults.ts`).
 * - Notifications: `TRANSACTION.SUCCESS` and `REFUND.SUCCESS|ABNORMAL` encrypted with the merchant's APIv3 key,
 *   signed, POSTed to notify_url, retried on WeChat's schedule (15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m,
 *   3h, 3h, 3h, 6h, 6h; ÷ timeScale) until a 2xx arrives within 5 s; every retry freshly signed, same `id`.
 *
 * What it does not simulate
 * - Platform-certificate mode, `/v3/certificates`, sensitive-field encryption, service-provider (partner) APIs.
 * - Fund-flow and sub-merchant bills, combined payments, profit sharing, coupons and discounts (payer_total = total).
 * - USERPAYING / REVOKED states, H5 domain/referer checks, the h5_url 5-minute lifetime, rate limits, duplicate
 *   deliveries from several servers, `WECHATPAY/SIGNTEST/` probes (tests build those with `signNotification`).
 * - Real money movement: ABNORMAL/CLOSED refunds simply give their amount back to what is refundable.
 *
 * The router parses bodies itself with `express.raw`; mount it before any app-wide body parser.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import express, { type Request, type Response, type Router } from 'express';
import type { WechatPayConfig } from '../../payments/providers/wechatpay/config';
import {
  buildRequestMessage,
  buildResponseMessage,
  formatRfc3339China,
  generateNonce,
  parseAuthorization,
  rsaSign,
  rsaVerify,
  timestampWithinWindow,
  unixTimestamp,
} from '../../payments/providers/wechatpay/crypto';
import type { NotificationEventType, PrepayRequest, TradeType } from '../../payments/providers/wechatpay/types';
import { toMajorString } from '../../shared/money';
import { BillFaults, type BillCorruption, type BillDiscrepancy } from '../shared/bill-faults';
import { chinaDay } from '../shared/china-day';
import { mountControlRoutes, RefundControl } from '../shared/control';
import { NotificationDispatcher, silentLogger, type DeliveryAttempt, type SimulatorLogger } from '../shared/delivery';
import { renderPhonePage } from '../shared/html';
import { canonicalJson, isHttpUrl, isObject, parseJson, str } from '../shared/request';
import { renderWechatBill, type WechatBillLine } from './bill';
import { generateRsaKeyPair, randomDigits } from '../shared/credentials';
import { generatePublicKeyId, type MerchantCredentials } from './credentials';
import {
  buildNotification,
  signNotification,
  type BuildNotificationInput,
  type BuiltNotification,
  type SignOverrides,
} from './notifications';
import { WechatPayStore, type MerchantRecord, type MerchantRegistration, type StoredRefund, type StoredTransaction } from './store';

/** WeChat Pay's notification retry schedule (pay.weixin.qq.com/doc/v3/merchant/4012791861, 通知应答). */
export const WECHATPAY_RETRY_SCHEDULE_MS: readonly number[] = [
  15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
].map((s) => s * 1000);

export const WECHATPAY_SIMULATOR_MOUNT = '/simulator/wechatpay';

/** Unpaid orders without `time_expire` stop being payable after this (WeChat: prepay_id lives 2 hours). */
const DEFAULT_EXPIRY_MS = 2 * 3600_000;
/** A bill's download_url works this long (WeChat: 30 seconds). */
const BILL_URL_TTL_MS = 30_000;
const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;
const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export interface WechatPaySimulatorOptions {
  /** External base URL of the app serving the router, e.g. `http://127.0.0.1:4000`. */
  publicBaseUrl: string;
  /** Where the app mounts `router`. Default `/simulator/wechatpay`. */
  mountPath?: string;
  /** Notification retries run this many times faster. Default 1. */
  timeScale?: number;
  logger?: SimulatorLogger;
  /** Use this WeChat Pay key (PKCS#8 PEM) instead of generating one. */
  privateKeyPem?: string;
  /** Use this key id instead of a random `PUB_KEY_ID_…` (tests: impersonate another simulator's id). */
  publicKeyId?: string;
  /** How long a notify URL may take to answer. Default 5000 ms (WeChat's limit). */
  replyTimeoutMs?: number;
}

export type RefundBehaviour = 'success' | 'processing' | 'abnormal';
export type PayOutcome = 'SUCCESS' | 'PAYERROR';

export interface PayInput {
  code_url?: string;
  prepay_id?: string;
  out_trade_no?: string;
  mchid?: string;
  outcome: PayOutcome;
  /** Default true; false records the payment without notifying (for query-fallback tests). */
  notify?: boolean;
}

export type PayResult =
  | { ok: true; out_trade_no: string; trade_state: string; transaction_id?: string }
  | { ok: false; status: 400 | 404 | 409; code: string; message: string };

export interface WechatPaySimulator {
  /** Mount at `mountPath` (default `/simulator/wechatpay`). */
  readonly router: Router;
  /** The WeChat Pay public key merchants verify with (SPKI PEM). */
  readonly publicKeyPem: string;
  /** `PUB_KEY_ID_…`, sent as `Wechatpay-Serial`. */
  readonly publicKeyId: string;
  /** `${publicBaseUrl}${mountPath}`: the adapter's `baseUrl`. */
  readonly baseUrl: string;
  readonly store: WechatPayStore;
  /** Every notification delivery attempt, oldest first. */
  readonly notifications: readonly DeliveryAttempt[];
  registerMerchant(merchant: MerchantRegistration): void;
  /** A `WechatPayConfig` for `WechatPayProvider` pointing at this simulator (registers the merchant too). */
  adapterConfig(credentials: MerchantCredentials, overrides?: Partial<WechatPayConfig>): WechatPayConfig;
  /** The phone page for a Native `code_url`. */
  scanUrl(codeUrl: string): string;
  /** What `POST /pay` does. */
  pay(input: PayInput): PayResult;
  /** How later refunds end; `delayMs` > 0 answers PROCESSING first. 'processing' without delay stays PROCESSING. */
  setRefundBehaviour(behaviour: RefundBehaviour, delayMs?: number): void;
  /** Ends a PROCESSING refund now (and notifies). */
  settleRefund(mchid: string, outRefundNo: string, status: 'SUCCESS' | 'ABNORMAL' | 'CLOSED'): boolean;
  /** Headers for `rawBody` signed with this simulator's key (test overrides allowed: stale timestamp, SIGNTEST, …). */
  signNotification(rawBody: string | Buffer, overrides?: SignOverrides): Record<string, string>;
  /** Builds a notification for a registered merchant (encrypted with its APIv3 key) and signs it. */
  buildNotification(
    mchid: string,
    input: Omit<BuildNotificationInput, 'apiV3Key'>,
    overrides?: SignOverrides,
  ): BuiltNotification & { headers: Record<string, string> };
  /** Sends a notification sent before once more (same id, fresh signature), with retries. */
  redeliver(notificationId: string): boolean;
  /** Makes later bills disagree with what was processed (`shared/bill-faults.ts`), until `clearBillFaults`. */
  injectBillDiscrepancy(d: BillDiscrepancy): void;
  /** Makes later bill downloads untrustworthy: `hash`, `truncate`, `columns` or `encoding`; null stops it. */
  corruptBill(mode: BillCorruption | null): void;
  clearBillFaults(): void;
  /** Cancels pending deliveries and refund timers. */
  close(): void;
}

interface ApiAnswer {
  status: number;
  body?: unknown;
}

interface SentNotification {
  id: string;
  url: string;
  label: string;
  rawBody: string;
}

const fail = (status: number, code: string, message: string): ApiAnswer => ({ status, body: { code, message } });

export function createWechatPaySimulator(options: WechatPaySimulatorOptions): WechatPaySimulator {
  const mountPath = (options.mountPath ?? WECHATPAY_SIMULATOR_MOUNT).replace(/\/+$/, '');
  const publicBaseUrl = options.publicBaseUrl.replace(/\/+$/, '');
  const baseUrl = `${publicBaseUrl}${mountPath}`;
  const logger = options.logger ?? silentLogger;

  const privateKeyPem = options.privateKeyPem ?? generateRsaKeyPair().privateKey;
  const privateKey: KeyObject = createPrivateKey(privateKeyPem);
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  const publicKeyId = options.publicKeyId ?? generatePublicKeyId();
  const signer = { privateKey, publicKeyId };

  const store = new WechatPayStore();
  const dispatcher = new NotificationDispatcher({
    retryScheduleMs: WECHATPAY_RETRY_SCHEDULE_MS,
    timeScale: options.timeScale,
    replyTimeoutMs: options.replyTimeoutMs,
    logger,
  });
  const sent = new Map<string, SentNotification>();
  const billFaults = new BillFaults();
  const billFiles = new Map<string, { mchid: string; bytes: Buffer; gzip: boolean; expiresAt: number }>();
  const refunds = new RefundControl<RefundBehaviour>(['success', 'processing', 'abnormal']);

  // ---- notifications -------------------------------------------------------------------------------------------

  function deliver(n: SentNotification): void {
    dispatcher.dispatch({
      notificationId: n.id,
      label: n.label,
      url: n.url,
      build: () => ({ headers: signNotification(n.rawBody, signer), body: n.rawBody }),
    });
  }

  function notify(merchant: MerchantRecord, url: string, eventType: NotificationEventType, resource: object): void {
    const built = buildNotification({ eventType, resource, apiV3Key: merchant.apiV3Key });
    const n: SentNotification = { id: built.id, url, label: eventType, rawBody: built.rawBody };
    sent.set(n.id, n);
    deliver(n);
  }

  function notifyRefund(r: StoredRefund): void {
    const merchant = store.merchant(r.mchid);
    if (!merchant || !r.notify_url) return;
    const eventType: NotificationEventType =
      r.status === 'SUCCESS' ? 'REFUND.SUCCESS' : r.status === 'ABNORMAL' ? 'REFUND.ABNORMAL' : 'REFUND.CLOSED';
    notify(merchant, r.notify_url, eventType, {
      mchid: r.mchid,
      out_trade_no: r.out_trade_no,
      transaction_id: r.transaction_id,
      out_refund_no: r.out_refund_no,
      refund_id: r.refund_id,
      refund_status: r.status,
      ...(r.success_time ? { success_time: r.success_time } : {}),
      user_received_account: '支付用户零钱',
      amount: { total: r.total, refund: r.refund, payer_total: r.total, payer_refund: r.refund },
    });
  }

  function settle(r: StoredRefund, status: 'SUCCESS' | 'ABNORMAL' | 'CLOSED'): void {
    if (r.status !== 'PROCESSING') return;
    r.status = status;
    if (status === 'SUCCESS') {
      r.success_time = formatRfc3339China(new Date());
      const tx = store.transaction(r.mchid, r.out_trade_no);
      if (tx && tx.state === 'SUCCESS') tx.state = 'REFUND';
    }
    logger.info({ out_refund_no: r.out_refund_no, status }, 'wechatpay simulator: refund settled');
    notifyRefund(r);
  }

  // ---- the customer's phone ------------------------------------------------------------------------------------

  function pay(input: PayInput): PayResult {
    const tx = store.find(input);
    if (!tx) return { ok: false, status: 404, code: 'ORDER_NOT_EXIST', message: '订单不存在' };
    if (tx.state === 'SUCCESS' || tx.state === 'REFUND') {
      return { ok: false, status: 409, code: 'ORDER_PAID', message: '该订单已支付' };
    }
    if (tx.state === 'CLOSED' || tx.state === 'REVOKED') {
      return { ok: false, status: 409, code: 'ORDER_CLOSED', message: '该订单已关闭' };
    }
    if (input.outcome === 'PAYERROR') {
      // Only successes are notified (WeChat Pay sends no callback for failed attempts).
      tx.state = 'PAYERROR';
      return { ok: true, out_trade_no: tx.out_trade_no, trade_state: tx.state };
    }
    if (input.outcome !== 'SUCCESS') {
      return { ok: false, status: 400, code: 'PARAM_ERROR', message: 'outcome must be SUCCESS or PAYERROR' };
    }
    const transactionId = `4200${randomDigits(24)}`;
    store.markPaid(tx, transactionId, new Date(), tx.payerOpenid ?? `o${generateNonce(27)}`);
    logger.info({ out_trade_no: tx.out_trade_no, transaction_id: transactionId }, 'wechatpay simulator: paid');
    const merchant = store.merchant(tx.mchid);
    if (merchant && input.notify !== false) {
      notify(merchant, tx.notify_url, 'TRANSACTION.SUCCESS', WechatPayStore.toWire(tx));
    }
    return { ok: true, out_trade_no: tx.out_trade_no, trade_state: tx.state, transaction_id: transactionId };
  }

  function phonePage(tx: StoredTransaction | undefined, payload: Record<string, unknown>): { status: number; html: string } {
    if (!tx) {
      return {
        status: 404,
        html: renderPhonePage({
          brand: 'WeChat Pay (simulator)',
          brandColor: '#07c160',
          merchant: '—',
          description: '',
          amountText: '',
          actionUrl: 'pay',
          payload,
          buttons: [],
          notice: 'Unknown or invalid payment code.',
        }),
      };
    }
    const merchant = store.merchant(tx.mchid);
    const notice =
      tx.state === 'SUCCESS' || tx.state === 'REFUND'
        ? 'This order has been paid.'
        : tx.state === 'CLOSED' || tx.state === 'REVOKED'
          ? 'This order is closed and can no longer be paid.'
          : undefined;
    const amountText = tx.currency === 'CNY' ? `¥${toMajorString(tx.total)}` : `${tx.currency} ${toMajorString(tx.total)}`;
    return {
      status: 200,
      html: renderPhonePage({
        brand: 'WeChat Pay (simulator)',
        brandColor: '#07c160',
        merchant: merchant?.name ?? tx.mchid,
        description: tx.description,
        amountText,
        details: [
          ['Order', tx.out_trade_no],
          ['Expires', formatRfc3339China(new Date(tx.expiresAt))],
        ],
        actionUrl: 'pay',
        payload,
        buttons: [
          { label: 'Pay', fields: { outcome: 'SUCCESS' }, primary: true },
          { label: 'Fail', fields: { outcome: 'PAYERROR' } },
        ],
        notice,
      }),
    };
  }

  // ---- API v3 --------------------------------------------------------------------------------------------------

  function sendSigned(res: Response, answer: ApiAnswer): void {
    const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
    const timestamp = String(unixTimestamp());
    const nonce = generateNonce();
    res.status(answer.status).set({
      'Request-ID': randomUUID(),
      'Wechatpay-Timestamp': timestamp,
      'Wechatpay-Nonce': nonce,
      'Wechatpay-Signature': rsaSign(buildResponseMessage(timestamp, nonce, text), privateKey),
      'Wechatpay-Serial': publicKeyId,
      'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048',
    });
    if (text === '') {
      res.end();
      return;
    }
    res.set('Content-Type', 'application/json; charset=utf-8').end(Buffer.from(text, 'utf8'));
  }

  function authenticate(req: Request, rawBody: Buffer): MerchantRecord | ApiAnswer {
    const auth = parseAuthorization(req.get('authorization'));
    if (!auth) return fail(401, 'SIGN_ERROR', 'Authorization 不合法：缺少 WECHATPAY2-SHA256-RSA2048 认证信息');
    const merchant = store.merchant(auth.mchid);
    if (!merchant) return fail(401, 'SIGN_ERROR', `商户号 ${auth.mchid} 不存在或未在模拟器注册`);
    if (auth.serial_no !== merchant.merchantSerial) return fail(401, 'SIGN_ERROR', '商户证书序列号有误');
    if (!timestampWithinWindow(auth.timestamp)) return fail(401, 'SIGN_ERROR', '请求时间戳与当前时间相差超过 5 分钟');
    // The client signed the request target as it sent it: the mount prefix and the raw query are part of it.
    const message = buildRequestMessage(req.method, req.originalUrl, auth.timestamp, auth.nonce_str, rawBody.toString('utf8'));
    if (!rsaVerify(message, auth.signature, merchant.merchantPublicKey)) {
      return fail(401, 'SIGN_ERROR', '错误的签名，验签失败');
    }
    return merchant;
  }

  type ApiHandler = (req: Request, merchant: MerchantRecord, body: unknown) => ApiAnswer;

  const api =
    (handler: ApiHandler) =>
    (req: Request, res: Response): void => {
      let answer: ApiAnswer;
      try {
        if (req.body !== undefined && !Buffer.isBuffer(req.body) && Object.keys(req.body as object).length > 0) {
          // An app-wide body parser ran first: the raw bytes the client signed are gone.
          throw new Error('the WeChat Pay simulator router must be mounted before any body parser');
        }
        const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const merchant = authenticate(req, rawBody);
        if ('status' in merchant) {
          answer = merchant;
        } else {
          let body: unknown;
          try {
            body = rawBody.length ? JSON.parse(rawBody.toString('utf8')) : undefined;
          } catch {
            body = Symbol.for('invalid-json');
          }
          answer =
            typeof body === 'symbol' ? fail(400, 'PARAM_ERROR', '请求体不是合法的 JSON') : handler(req, merchant, body);
        }
      } catch (err) {
        logger.error({ err }, 'wechatpay simulator: handler failed');
        answer = fail(500, 'SYSTEM_ERROR', '系统错误');
      }
      sendSigned(res, answer);
    };

  function prepay(tradeType: TradeType): ApiHandler {
    return (req, merchant, raw) => {
      const checked = validatePrepay(raw, merchant, tradeType);
      if ('status' in checked) return checked;
      const body = checked;
      const fingerprint = `${req.path}\n${canonicalJson(body)}`;
      const existing = store.transaction(merchant.mchid, body.out_trade_no);
      if (existing) {
        if (existing.fingerprint !== fingerprint) {
          // WeChat Pay's answer to a reused out_trade_no with different parameters.
          return fail(400, 'INVALID_REQUEST', '201 商户订单号重复');
        }
        if (existing.state === 'SUCCESS' || existing.state === 'REFUND') return fail(400, 'ORDER_PAID', '该订单已支付');
        if (existing.state === 'CLOSED') return fail(400, 'ORDER_CLOSED', '该订单已关闭');
        return { status: 200, body: existing.prepayAnswer };
      }

      const prepayId = `wx${formatRfc3339China(new Date()).replace(/\D/g, '').slice(0, 14)}${randomBytes(10).toString('hex')}`;
      const tx: StoredTransaction = {
        mchid: merchant.mchid,
        appid: body.appid,
        out_trade_no: body.out_trade_no,
        trade_type: tradeType,
        description: body.description,
        notify_url: body.notify_url,
        attach: body.attach,
        total: body.amount.total,
        currency: body.amount.currency ?? 'CNY',
        expiresAt: body.time_expire ? Date.parse(body.time_expire) : Date.now() + DEFAULT_EXPIRY_MS,
        payerOpenid: body.payer?.openid,
        payerClientIp: body.scene_info?.payer_client_ip,
        fingerprint,
        prepayAnswer: {},
        prepay_id: prepayId,
        state: 'NOTPAY',
        createdAt: Date.now(),
      };
      if (tradeType === 'NATIVE') {
        tx.code_url = `weixin://wxpay/bizpayurl?pr=${generateNonce(11)}`;
        tx.prepayAnswer = { code_url: tx.code_url };
      } else if (tradeType === 'JSAPI') {
        tx.prepayAnswer = { prepay_id: prepayId };
      } else {
        tx.prepayAnswer = { h5_url: `${baseUrl}/h5?prepay_id=${encodeURIComponent(prepayId)}` };
      }
      store.addTransaction(tx);
      logger.info(
        { out_trade_no: tx.out_trade_no, trade_type: tradeType, ...(tx.code_url ? { scan: scanUrl(tx.code_url) } : tx.prepayAnswer) },
        'wechatpay simulator: prepay created',
      );
      return { status: 200, body: tx.prepayAnswer };
    };
  }

  const queryByOutTradeNo: ApiHandler = (req, merchant) => {
    if (req.query.mchid !== merchant.mchid) return fail(400, 'PARAM_ERROR', 'mchid 与请求签名的商户号不一致');
    const tx = store.transaction(merchant.mchid, String(req.params.no));
    if (!tx) return fail(404, 'ORDER_NOT_EXIST', '订单不存在');
    return { status: 200, body: WechatPayStore.toWire(tx) };
  };

  const queryByTransactionId: ApiHandler = (req, merchant) => {
    if (req.query.mchid !== merchant.mchid) return fail(400, 'PARAM_ERROR', 'mchid 与请求签名的商户号不一致');
    const tx = store.byTransaction(merchant.mchid, String(req.params.id));
    if (!tx) return fail(404, 'ORDER_NOT_EXIST', '订单不存在');
    return { status: 200, body: WechatPayStore.toWire(tx) };
  };

  const close: ApiHandler = (req, merchant, body) => {
    if (!isObject(body) || body.mchid !== merchant.mchid) return fail(400, 'PARAM_ERROR', 'mchid 与请求签名的商户号不一致');
    const tx = store.transaction(merchant.mchid, String(req.params.no));
    // Real WeChat Pay answers 204 for an unknown out_trade_no and for a repeated close (developers.weixin.qq.com
    // community, "微信支付v3 关闭订单API一直返回204").
    if (!tx) return { status: 204 };
    if (tx.state === 'SUCCESS' || tx.state === 'REFUND') return fail(400, 'ORDER_PAID', '订单已支付');
    tx.state = 'CLOSED';
    return { status: 204 };
  };

  const createRefund: ApiHandler = (_req, merchant, body) => {
    if (!isObject(body)) return fail(400, 'PARAM_ERROR', '请求体必须是 JSON 对象');
    const amount = body.amount;
    if (typeof body.out_refund_no !== 'string' || !OUT_REFUND_NO.test(body.out_refund_no)) {
      return fail(400, 'PARAM_ERROR', 'out_refund_no 格式错误');
    }
    if (!isObject(amount) || !isPositiveInt(amount.refund) || !isPositiveInt(amount.total)) {
      return fail(400, 'PARAM_ERROR', 'amount.refund 与 amount.total 必须是正整数');
    }
    if (amount.currency !== 'CNY') return fail(400, 'PARAM_ERROR', 'amount.currency 只支持 CNY');
    if (body.notify_url !== undefined && !isHttpUrl(body.notify_url)) return fail(400, 'PARAM_ERROR', 'notify_url 格式错误');
    if (body.reason !== undefined && (typeof body.reason !== 'string' || Array.from(body.reason).length > 80)) {
      return fail(400, 'PARAM_ERROR', 'reason 超过 80 个字符');
    }
    const tx =
      typeof body.out_trade_no === 'string'
        ? store.transaction(merchant.mchid, body.out_trade_no)
        : typeof body.transaction_id === 'string'
          ? store.byTransaction(merchant.mchid, body.transaction_id)
          : undefined;
    if (!tx) return fail(404, 'RESOURCE_NOT_EXISTS', '订单不存在');

    const existing = store.refund(merchant.mchid, body.out_refund_no);
    if (existing) {
      // A retried refund with the same out_refund_no is the same refund (never a second one).
      if (existing.out_trade_no !== tx.out_trade_no || existing.refund !== amount.refund || existing.total !== amount.total) {
        return fail(400, 'INVALID_REQUEST', '同一退款单号的订单或金额与之前的请求不一致');
      }
      return { status: 200, body: WechatPayStore.refundToWire(existing) };
    }
    if (tx.state !== 'SUCCESS' && tx.state !== 'REFUND') return fail(400, 'INVALID_REQUEST', '订单未支付，不能退款');
    if (amount.total !== tx.total) return fail(400, 'INVALID_REQUEST', '订单金额 total 与原订单不一致');
    if ((amount.refund as number) > store.refundable(tx)) {
      return fail(400, 'INVALID_REQUEST', '申请退款金额超过订单可退金额');
    }

    const refund: StoredRefund = {
      mchid: merchant.mchid,
      refund_id: `50${randomDigits(27)}`,
      out_refund_no: body.out_refund_no,
      out_trade_no: tx.out_trade_no,
      transaction_id: tx.transaction_id ?? '',
      refund: amount.refund as number,
      total: tx.total,
      currency: tx.currency,
      reason: typeof body.reason === 'string' ? body.reason : undefined,
      notify_url: typeof body.notify_url === 'string' ? body.notify_url : undefined,
      status: 'PROCESSING',
      create_time: formatRfc3339China(new Date()),
    };
    store.addRefund(refund);
    const final = refunds.behaviour === 'abnormal' ? 'ABNORMAL' : 'SUCCESS';
    if (refunds.delayMs > 0) {
      refunds.later(() => settle(refund, final), refunds.delayMs);
    } else if (refunds.behaviour !== 'processing') {
      settle(refund, final);
    }
    return { status: 200, body: WechatPayStore.refundToWire(refund) };
  };

  const queryRefund: ApiHandler = (req, merchant) => {
    const r = store.refund(merchant.mchid, String(req.params.no));
    if (!r) return fail(404, 'RESOURCE_NOT_EXISTS', '退款单不存在');
    return { status: 200, body: WechatPayStore.refundToWire(r) };
  };

  // ---- bills ---------------------------------------------------------------------------------------------------

  /** The lines of a merchant's China day: payments that succeeded that day, refunds made that day, then the faults. */
  function billLines(merchant: MerchantRecord, date: string): WechatBillLine[] {
    const { transactions, refunds } = store.merchantRecords(merchant.mchid);
    const lines: WechatBillLine[] = [];
    const byNo = new Map(transactions.map((t) => [t.out_trade_no, t]));
    for (const t of transactions) {
      if (!t.success_time || !t.transaction_id || chinaDay(new Date(t.success_time)) !== date) continue;
      lines.push({
        kind: 'payment',
        paymentNo: t.out_trade_no,
        amount: t.total,
        status: 'SUCCESS',
        at: new Date(t.success_time),
        appid: t.appid,
        mchid: t.mchid,
        transactionId: t.transaction_id,
        openid: t.payerOpenid ?? '',
        tradeType: t.trade_type,
        description: t.description,
      });
    }
    for (const r of refunds) {
      const at = new Date(r.success_time ?? r.create_time);
      if (chinaDay(at) !== date) continue;
      const t = byNo.get(r.out_trade_no);
      lines.push({
        kind: 'refund',
        paymentNo: r.out_trade_no,
        refundNo: r.out_refund_no,
        amount: r.refund,
        status: r.status,
        at,
        appid: t?.appid ?? merchant.appid,
        mchid: r.mchid,
        transactionId: r.transaction_id,
        refundId: r.refund_id,
        openid: t?.payerOpenid ?? '',
        tradeType: t?.trade_type ?? 'NATIVE',
        description: t?.description ?? '',
      });
    }
    return billFaults.apply(
      date,
      chinaDay(new Date()),
      lines,
      (d) => ({
        kind: 'payment',
        paymentNo: d.paymentNo,
        amount: d.amount,
        status: 'SUCCESS',
        at: new Date(),
        appid: merchant.appid,
        mchid: merchant.mchid,
        transactionId: d.transactionId ?? `4200${randomDigits(24)}`,
        openid: `o${generateNonce(27)}`,
        tradeType: 'NATIVE',
        description: 'bill-only line (injected)',
      }),
      (l) => (l.kind === 'payment' ? 'REVOKED' : 'ABNORMAL'),
    );
  }

  const tradeBill: ApiHandler = (req, merchant) => {
    const date = typeof req.query.bill_date === 'string' ? req.query.bill_date : '';
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
      return fail(400, 'PARAM_ERROR', 'bill_date 须为 yyyy-MM-dd 格式');
    }
    if (date > chinaDay(new Date())) return fail(400, 'PARAM_ERROR', 'bill_date 不能晚于今天');
    const billType = req.query.bill_type ?? 'ALL';
    if (billType !== 'ALL') return fail(400, 'PARAM_ERROR', '模拟器只提供 bill_type=ALL 的账单');
    const gzip = req.query.tar_type === 'GZIP';
    const lines = billLines(merchant, date);
    if (lines.length === 0) return fail(400, 'NO_STATEMENT_EXIST', '账单文件不存在');
    const corruption = billFaults.corruptionMode;
    const plain = renderWechatBill(lines, corruption);
    const hash = createHash('sha1').update(corruption === 'hash' ? Buffer.concat([plain, Buffer.from('x')]) : plain).digest('hex');
    let bytes = gzip ? gzipSync(plain) : plain;
    if (corruption === 'truncate') bytes = bytes.subarray(0, Math.floor(bytes.length / 2));
    const now = Date.now();
    for (const [t, f] of billFiles) if (f.expiresAt < now) billFiles.delete(t);
    const token = randomBytes(24).toString('base64url');
    billFiles.set(token, { mchid: merchant.mchid, bytes, gzip, expiresAt: now + BILL_URL_TTL_MS });
    return { status: 200, body: { hash_type: 'SHA1', hash_value: hash, download_url: `${baseUrl}/v3/billdownload/file?token=${token}` } };
  };

  /** The download is authenticated like any API call, but its answer is the raw file, unsigned (as at WeChat Pay). */
  function billDownload(req: Request, res: Response): void {
    const merchant = authenticate(req, Buffer.alloc(0));
    if ('status' in merchant) return sendSigned(res, merchant);
    const file = billFiles.get(typeof req.query.token === 'string' ? req.query.token : '');
    if (!file || file.expiresAt < Date.now() || file.mchid !== merchant.mchid) {
      return sendSigned(res, fail(400, 'INVALID_REQUEST', '下载链接已过期或无效，请重新申请账单'));
    }
    res
      .status(200)
      .set({ 'Request-ID': randomUUID(), 'Content-Type': file.gzip ? 'application/x-gzip' : 'text/plain; charset=utf-8' })
      .end(file.bytes);
  }

  // ---- router --------------------------------------------------------------------------------------------------

  const router = express.Router();
  router.use(express.raw({ type: '*/*', limit: '1mb' }));

  router.post('/v3/pay/transactions/native', api(prepay('NATIVE')));
  router.post('/v3/pay/transactions/jsapi', api(prepay('JSAPI')));
  router.post('/v3/pay/transactions/h5', api(prepay('MWEB')));
  router.get('/v3/pay/transactions/out-trade-no/:no', api(queryByOutTradeNo));
  router.get('/v3/pay/transactions/id/:id', api(queryByTransactionId));
  router.post('/v3/pay/transactions/out-trade-no/:no/close', api(close));
  router.post('/v3/refund/domestic/refunds', api(createRefund));
  router.get('/v3/refund/domestic/refunds/:no', api(queryRefund));
  router.get('/v3/bill/tradebill', api(tradeBill));
  router.get('/v3/billdownload/file', billDownload);
  router.use('/v3', api(() => fail(404, 'NOT_FOUND', '请求的资源不存在')));

  router.get('/scan', (req, res) => {
    const codeUrl = typeof req.query.code_url === 'string' ? req.query.code_url : '';
    const page = phonePage(codeUrl ? store.find({ code_url: codeUrl }) : undefined, { code_url: codeUrl });
    res.status(page.status).type('html').send(page.html);
  });

  router.get('/h5', (req, res) => {
    const prepayId = typeof req.query.prepay_id === 'string' ? req.query.prepay_id : '';
    const page = phonePage(prepayId ? store.find({ prepay_id: prepayId }) : undefined, { prepay_id: prepayId });
    res.status(page.status).type('html').send(page.html);
  });

  router.post('/pay', (req, res) => {
    const body = parseJson(req.body);
    if (!isObject(body) || (body.outcome !== 'SUCCESS' && body.outcome !== 'PAYERROR')) {
      res.status(400).json({ code: 'PARAM_ERROR', message: 'expected JSON { code_url | prepay_id | out_trade_no, outcome: SUCCESS | PAYERROR }' });
      return;
    }
    const result = pay({
      code_url: str(body.code_url),
      prepay_id: str(body.prepay_id),
      out_trade_no: str(body.out_trade_no),
      mchid: str(body.mchid),
      outcome: body.outcome,
      notify: body.notify !== false,
    });
    if (!result.ok) {
      res.status(result.status).json({ code: result.code, message: result.message });
      return;
    }
    res.status(200).json({ out_trade_no: result.out_trade_no, trade_state: result.trade_state, transaction_id: result.transaction_id });
  });

  mountControlRoutes(router, {
    invalidCode: 'PARAM_ERROR',
    refunds,
    invalidBehaviour: 'refundBehaviour: success | processing | abnormal',
    invalidDelay: 'refundDelayMs must be a non-negative number',
    settleRefund: {
      settle: (s) => {
        const status = String(s.status);
        return ['SUCCESS', 'ABNORMAL', 'CLOSED'].includes(status) && settleRefund(String(s.mchid), String(s.out_refund_no), status as 'SUCCESS' | 'ABNORMAL' | 'CLOSED');
      },
      notFound: { code: 'RESOURCE_NOT_EXISTS', message: 'no such PROCESSING refund (settleRefund: { mchid, out_refund_no, status })' },
    },
    dispatcher,
    billFaults,
  });

  // ---- the rest of the handle ----------------------------------------------------------------------------------

  function registerMerchant(m: MerchantRegistration): void {
    store.registerMerchant(m);
  }

  function scanUrl(codeUrl: string): string {
    return `${baseUrl}/scan?code_url=${encodeURIComponent(codeUrl)}`;
  }

  function settleRefund(mchid: string, outRefundNo: string, status: 'SUCCESS' | 'ABNORMAL' | 'CLOSED'): boolean {
    const r = store.refund(mchid, outRefundNo);
    if (!r || r.status !== 'PROCESSING') return false;
    settle(r, status);
    return true;
  }

  return {
    router,
    publicKeyPem,
    publicKeyId,
    baseUrl,
    store,
    get notifications() {
      return dispatcher.attempts;
    },
    registerMerchant,
    adapterConfig(credentials, overrides = {}) {
      registerMerchant(credentials);
      return {
        mchid: credentials.mchid,
        appid: credentials.appid,
        merchantSerial: credentials.merchantSerial,
        merchantPrivateKey: credentials.merchantPrivateKey,
        apiV3Key: credentials.apiV3Key,
        platformPublicKey: publicKeyPem,
        platformPublicKeyId: publicKeyId,
        baseUrl,
        ...overrides,
      };
    },
    scanUrl,
    pay,
    setRefundBehaviour: (behaviour, delayMs) => refunds.set(behaviour, delayMs),
    settleRefund,
    signNotification: (rawBody, overrides) => signNotification(rawBody, signer, overrides),
    buildNotification(mchid, input, overrides) {
      const merchant = store.merchant(mchid);
      if (!merchant) throw new Error(`merchant ${mchid} is not registered at the simulator`);
      const built = buildNotification({ ...input, apiV3Key: merchant.apiV3Key });
      return { ...built, headers: signNotification(built.rawBody, signer, overrides) };
    },
    redeliver(notificationId) {
      const n = sent.get(notificationId);
      if (!n) return false;
      deliver(n);
      return true;
    },
    injectBillDiscrepancy: (d) => billFaults.inject(d),
    corruptBill: (mode) => billFaults.corrupt(mode),
    clearBillFaults: () => billFaults.clear(),
    close() {
      dispatcher.close();
      refunds.close();
    },
  };
}

// ---- validation helpers ----------------------------------------------------------------------------------------

function validatePrepay(raw: unknown, merchant: MerchantRecord, tradeType: TradeType): PrepayRequest | ApiAnswer {
  if (!isObject(raw)) return fail(400, 'PARAM_ERROR', '请求体必须是 JSON 对象');
  const b = raw;
  const missing = (field: string) => fail(400, 'PARAM_ERROR', `输入源“/body/${field}”映射到值字段必填性规则校验失败，此字段为必填项`);
  for (const f of ['appid', 'mchid', 'description', 'out_trade_no', 'notify_url'] as const) {
    if (typeof b[f] !== 'string' || b[f] === '') return missing(f);
  }
  if (b.mchid !== merchant.mchid) return fail(400, 'PARAM_ERROR', 'mchid 与请求签名的商户号不一致');
  if (b.appid !== merchant.appid) return fail(400, 'APPID_MCHID_NOT_MATCH', 'AppID和mch_id不匹配');
  if (Array.from(b.description as string).length > 127) return fail(400, 'PARAM_ERROR', 'description 超过 127 个字符');
  if (!OUT_TRADE_NO.test(b.out_trade_no as string)) {
    return fail(400, 'PARAM_ERROR', 'out_trade_no 须为 6-32 位数字、大小写字母或 _-|* 的组合');
  }
  if (!isHttpUrl(b.notify_url)) return fail(400, 'PARAM_ERROR', 'notify_url 须为 http(s) 地址');
  if (b.time_expire !== undefined) {
    if (typeof b.time_expire !== 'string' || !RFC3339.test(b.time_expire) || Number.isNaN(Date.parse(b.time_expire))) {
      return fail(400, 'PARAM_ERROR', 'time_expire 须为 RFC3339 格式，如 2018-06-08T10:34:56+08:00');
    }
  }
  const amount = b.amount;
  if (!isObject(amount)) return missing('amount');
  if (!isPositiveInt(amount.total)) return fail(400, 'PARAM_ERROR', 'amount.total 须为正整数（单位：分）');
  if (amount.currency !== undefined && amount.currency !== 'CNY') return fail(400, 'PARAM_ERROR', 'amount.currency 只支持 CNY');
  if (tradeType === 'JSAPI') {
    if (!isObject(b.payer) || typeof b.payer.openid !== 'string' || b.payer.openid === '') return missing('payer/openid');
  }
  if (tradeType === 'MWEB') {
    const scene = b.scene_info;
    if (!isObject(scene) || typeof scene.payer_client_ip !== 'string' || scene.payer_client_ip === '') {
      return missing('scene_info/payer_client_ip');
    }
    if (!isObject(scene.h5_info) || typeof scene.h5_info.type !== 'string' || scene.h5_info.type === '') {
      return missing('scene_info/h5_info/type');
    }
  }
  return b as unknown as PrepayRequest;
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}
