/**
 * UnionPay online gateway simulator (银联全渠道 ACP 5.1.0, `signMethod=01`): UnionPay's side of the protocol for
 * development and tests. Mounted by the app at `/simulator/unionpay`; adapters reach it only through
 * `UNIONPAY_GATEWAY_URL=<publicBaseUrl>/simulator/unionpay/gateway/api/`.
 *
 * What it simulates
 * - Its own certificate chain, made at start like UnionPay's test environment: root CA → middle CA → UnionPay's
 *   signing certificate (CN `041@Z…@中国银联股份有限公司@00000001`). Merchants verify with `rootCertPem` and
 *   `middleCertPem`; every answer and notification carries the signing certificate as `signPubKeyCert`, its
 *   `certId` and a `signature` (SHA-256 hex, then SHA256withRSA). Merchant certificates can be issued by the same
 *   middle CA (`issueMerchantCredentials`).
 * - Request authentication: `version=5.1.0`, `signMethod=01`, a registered `merId`, `certId` equal to the
 *   registered certificate's serial (decimal), `signature` valid for its key. Failures: `respCode=11` (signed).
 * - `gateway/api/frontTransReq.do` (browser form POST, front consume `01/01/000201/07|08`): checks the request,
 *   records the order, shows the cashier page (Pay / Fail). Pay: notifies `backUrl` and sends the browser back to
 *   `frontUrl` with the same signed result fields (auto-submitting form). Refused requests: an error page (HTTP 400)
 *   with `respCode` / `respMsg`.
 * - `gateway/api/backTransReq.do`: QR code apply (`01/07/000000`) → `qrCode=https://qr.95516.com/00010000/62…`;
 *   the same orderId + txnTime + amount again returns the same code, anything else under a used orderId is
 *   `12` (重复交易). Refund (`04/00`) by `origQryId`: `00` with the refund's `queryId`, the result by notification;
 *   a reused refund orderId is `12`; more than what remains refundable is `36`; an unpaid or unknown original `35`.
 * - `gateway/api/queryTrans.do` (`00/00`) by orderId + txnTime (or queryId): `respCode=00` with `origRespCode`
 *   `00` (paid / refunded), `05` (accepted, not paid yet), `01` (failed, or unpaid past `payTimeout`); `34` when
 *   there is no such transaction (a front order exists only once the browser has POSTed the form).
 * - `payTimeout` (default 2 h after txnTime): afterwards an unpaid order cannot be paid.
 * - Reconciliation files: `filedownload/` (UnionPay's `fileTransfer.do` host; `txnType=76`, `fileType=00`,
 *   `settleDate=MMDD`, any day up to today: files are ready at once here) answers a signed message whose
 *   `fileContent` is the deflated zip of the day's ZM file (every consume paid and refund made that China day, as
 *   processed here; UnionPay's own clearing day ends at 23:00), or `respCode=98` for a day without transactions.
 *   `injectBillDiscrepancy` / `corruptBill` (or `POST /bill-faults`) make files disagree with what was processed, or
 *   corrupt them (`hash`: the signature no longer covers `fileContent`; `truncate`; `columns`).
 * - The customer: `GET /scan?qrCode=…` (phone page), `POST /pay {orderId | qrCode, outcome: SUCCESS | FAIL}`.
 *   Failures are not notified (UnionPay sends no back notification for failed transactions).
 * - Notifications: form POST to `backUrl`, acknowledged only by HTTP 200, re-sent on UnionPay's schedule: five
 *   deliveries in all, 0, 1, 2 and 4 minutes apart (official ACP demo `Form_6_2_FrontConsume`: "总共发送5次，每次的
 *   间隔时间为0,1,2,4分钟"; some integrators quote 1, 2, 4, 5 minutes) ÷ timeScale; 10 s to answer.
 *
 * What it does not simulate
 * - Other signMethods (SHA-256 / SM3 with a shared key), 5.0.0 `validateCert` directories, sensitive-field
 *   encryption (`encryptCertId`, `accNo`), token payments, consume undo (`txnType=31`), pre-authorisation, file
 *   types other than `00`, the customer's card pages, `frontFailUrl`, `reqReserved` echo, rate limits.
 * - Response codes are a small documented subset of ACP's appendix.
 *
 * The router parses bodies itself with `express.raw` (a parsed urlencoded body works too: ACP signs decoded values).
 */
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import { UNIONPAY_FRONT_FORM_PATH, type UnionPayConfig } from '../../payments/providers/unionpay/config';
import {
  formatAcpResponse,
  formatAcpTime,
  parseAcpTime,
  parseForm,
  verifySignature,
} from '../../payments/providers/unionpay/crypto';
import { FRONT_FORM_HEADERS, renderFrontForm } from '../../payments/providers/unionpay/form';
import {
  ACCESS_TYPE_MERCHANT,
  ACP_TIME_PATTERN,
  BizType,
  ChannelType,
  CURRENCY_CNY,
  ORDER_ID_PATTERN,
  QUERY_ID_PATTERN,
  RespCode,
  TxnSubType,
  TxnType,
  type AcpFields,
} from '../../payments/providers/unionpay/types';
import { toMajorString } from '../../shared/money';
import { BillFaults, type BillCorruption, type BillDiscrepancy } from '../shared/bill-faults';
import { chinaDay } from '../shared/china-day';
import { mountControlRoutes, RefundControl } from '../shared/control';
import { NotificationDispatcher, silentLogger, type DeliveryAttempt, type SimulatorLogger } from '../shared/delivery';
import { renderPhonePage } from '../shared/html';
import { isHttpUrl, isObject, parseJson, str } from '../shared/request';
import { renderUnionPayFile, type UnionPayBillLine } from './bill';
import { randomDigits } from '../shared/credentials';
import { generateUnionPayMerchantCredentials, type UnionPayMerchantCredentials } from './credentials';
import {
  consumeResultFields,
  encodeNotification,
  MASKED_CARD,
  newSettlement,
  refundResultFields,
  RESP_MSG_SUCCESS,
  signUnionPayMessage,
  type UnionPayMessageSigner,
} from './messages';
import { renderCashierPage, renderGatewayError, renderResultPage, UNIONPAY_BRAND, UNIONPAY_COLOR } from './pages';
import { createUnionPayPki, type UnionPayPki } from './pki';
import { UnionPayStore, type MerchantRecord, type MerchantRegistration, type StoredConsume, type StoredRefund } from './store';

/** UnionPay's back-notification schedule: the first at once, then 0, 1, 2, 4 minutes after each failure. */
export const UNIONPAY_RETRY_SCHEDULE_MS: readonly number[] = [0, 60, 120, 240].map((s) => s * 1000);
/** UnionPay waits 10 s for the merchant's HTTP 200. */
export const UNIONPAY_REPLY_TIMEOUT_MS = 10_000;
export const UNIONPAY_SIMULATOR_MOUNT = '/simulator/unionpay';

/** Simulator's choice when a request has no `payTimeout`. */
const DEFAULT_PAY_TIMEOUT_MS = 2 * 3600_000;
/** How far `txnTime` may be from now (it must be the request's current time; front forms are submitted later). */
const TXN_TIME_MAX_AGE_MS = 24 * 3600_000;
const TXN_TIME_MAX_AHEAD_MS = 5 * 60_000;
/** The longest `backUrl` / `frontUrl` the simulator takes. */
const MAX_URL_LENGTH = 512;

export interface UnionPaySimulatorOptions {
  /** External base URL of the app serving the router, e.g. `http://127.0.0.1:4000`. */
  publicBaseUrl: string;
  /** Where the app mounts `router`. Default `/simulator/unionpay`. */
  mountPath?: string;
  /** Notification retries run this many times faster. Default 1. */
  timeScale?: number;
  logger?: SimulatorLogger;
  /** How long a notify URL may take to answer. Default 10000 ms (UnionPay's limit). */
  replyTimeoutMs?: number;
  /** Use this certificate world instead of making one (tests: impersonate, or share a chain). */
  pki?: UnionPayPki;
}

export type PayOutcome = 'SUCCESS' | 'FAIL';

export interface PayInput {
  orderId?: string;
  merId?: string;
  qrCode?: string;
  /** The cashier page's handle (gateway payments). */
  cashierRef?: string;
  outcome: PayOutcome;
  /** Default true; false records the payment without notifying (for query-fallback tests). */
  notify?: boolean;
}

export type PayResult =
  | { ok: true; orderId: string; status: 'SUCCESS' | 'FAILED'; queryId?: string }
  | { ok: false; status: 400 | 404 | 409; code: string; message: string };

export type RefundBehaviour = 'success' | 'fail' | 'pending';

export interface BuiltNotification {
  /** The signed fields. */
  fields: AcpFields;
  /** The exact form body to POST. */
  rawBody: string;
  headers: Record<string, string>;
}

export interface UnionPaySimulator {
  /** Mount at `mountPath` (default `/simulator/unionpay`). */
  readonly router: Router;
  /** `${publicBaseUrl}${mountPath}`. */
  readonly baseUrl: string;
  /** `${baseUrl}/gateway/api/`: the adapter's `gatewayUrl`. */
  readonly gatewayUrl: string;
  /** UnionPay's root certificate (PEM): the adapter's `rootCert`. */
  readonly rootCertPem: string;
  /** UnionPay's middle certificate (PEM): the adapter's `middleCert`. */
  readonly middleCertPem: string;
  /** The certificate answers and notifications are signed with (sent as `signPubKeyCert`). */
  readonly signerCertPem: string;
  /** The whole certificate world, keys included (tests issue odd certificates from it). */
  readonly pki: UnionPayPki;
  readonly store: UnionPayStore;
  /** Every notification delivery attempt, oldest first. */
  readonly notifications: readonly DeliveryAttempt[];
  registerMerchant(merchant: MerchantRegistration): void;
  /** Merchant credentials whose certificate this simulator's middle CA issued (not registered yet). */
  issueMerchantCredentials(merId?: string): UnionPayMerchantCredentials;
  /** A `UnionPayConfig` pointing at this simulator (registers the merchant too). */
  adapterConfig(credentials: UnionPayMerchantCredentials, overrides?: Partial<UnionPayConfig>): UnionPayConfig;
  /** The phone page for a QR code. */
  scanUrl(qrCode: string): string;
  /** What `POST /pay` does. */
  pay(input: PayInput): PayResult;
  /** How later refunds end (`delayMs` > 0: that much after they are accepted); 'pending' waits for `settleRefund`. */
  setRefundBehaviour(behaviour: RefundBehaviour, delayMs?: number): void;
  /** Ends a PENDING refund now (and notifies). */
  settleRefund(merId: string, orderId: string, state: 'SUCCESS' | 'FAILED'): boolean;
  /** Signs fields as UnionPay does (`signPubKeyCert`, `certId`, `signature`); another signer may be given. */
  signFields(fields: AcpFields, signer?: UnionPayMessageSigner): AcpFields;
  /** A synchronous answer's body as UnionPay sends it (`k=v&k=v`). */
  formatAnswer(fields: AcpFields): string;
  /** A signed notification ready to POST (tests then break what they need). */
  buildNotification(fields: AcpFields, signer?: UnionPayMessageSigner): BuiltNotification;
  /** Sends a notification sent before once more, with retries. */
  redeliver(notificationId: string): boolean;
  /**
   * Makes later reconciliation files disagree with what was processed (`shared/bill-faults.ts`), until
   * `clearBillFaults`. ZM files list successful transactions only: `status` is refused.
   */
  injectBillDiscrepancy(d: BillDiscrepancy): void;
  /** Makes later files untrustworthy: `hash` (signature broken), `truncate` or `columns`. */
  corruptBill(mode: BillCorruption | null): void;
  clearBillFaults(): void;
  /** Cancels pending deliveries and refund timers. */
  close(): void;
}

interface SentNotification {
  id: string;
  url: string;
  label: string;
  fields: AcpFields;
}

interface Refusal {
  respCode: string;
  respMsg: string;
}

const refuse = (respCode: string, respMsg: string): Refusal => ({ respCode, respMsg });
const isRefusal = (v: unknown): v is Refusal => typeof v === 'object' && v !== null && 'respCode' in v && 'respMsg' in v;

/** Request fields echoed in answers, when they are safe in the raw `k=v&` answer format. */
const ECHOED = ['version', 'encoding', 'signMethod', 'txnType', 'txnSubType', 'bizType', 'channelType', 'accessType', 'merId', 'orderId', 'txnTime'];

export function createUnionPaySimulator(options: UnionPaySimulatorOptions): UnionPaySimulator {
  const mountPath = (options.mountPath ?? UNIONPAY_SIMULATOR_MOUNT).replace(/\/+$/, '');
  const publicBaseUrl = options.publicBaseUrl.replace(/\/+$/, '');
  const baseUrl = `${publicBaseUrl}${mountPath}`;
  const gatewayUrl = `${baseUrl}/gateway/api/`;
  const cashierUrl = `${baseUrl}/gateway/cashier`;
  const logger = options.logger ?? silentLogger;

  const pki = options.pki ?? createUnionPayPki();
  const signer: UnionPayMessageSigner = { key: pki.signer.keyPem, certPem: pki.signer.certPem, certId: pki.signer.certId };
  const sign = (fields: AcpFields, s: UnionPayMessageSigner = signer) => signUnionPayMessage(fields, s);

  const store = new UnionPayStore();
  const dispatcher = new NotificationDispatcher({
    retryScheduleMs: UNIONPAY_RETRY_SCHEDULE_MS,
    timeScale: options.timeScale,
    replyTimeoutMs: options.replyTimeoutMs ?? UNIONPAY_REPLY_TIMEOUT_MS,
    logger,
  });
  const sent = new Map<string, SentNotification>();
  const refunds = new RefundControl<RefundBehaviour>(['success', 'fail', 'pending']);
  const billFaults = new BillFaults(['hash', 'truncate', 'columns']);

  // ---- notifications -------------------------------------------------------------------------------------------

  function deliver(n: SentNotification): void {
    dispatcher.dispatch({
      notificationId: n.id,
      label: n.label,
      url: n.url,
      build: () => encodeNotification(n.fields),
      acknowledged: (status) => status === 200,
    });
  }

  function notify(url: string | undefined, fields: AcpFields, label: string): void {
    if (!url) return;
    const n: SentNotification = { id: `${fields.queryId}:${fields.txnType}`, url, label, fields: sign(fields) };
    sent.set(n.id, n);
    deliver(n);
  }

  function settle(r: StoredRefund, state: 'SUCCESS' | 'FAILED'): void {
    if (r.state !== 'PENDING') return;
    r.state = state;
    logger.info({ orderId: r.orderId, origQryId: r.origQryId, state }, 'unionpay simulator: refund settled');
    notify(r.backUrl, refundResultFields(r), state === 'SUCCESS' ? 'REFUND.SUCCESS' : 'REFUND.FAILED');
  }

  // ---- the customer --------------------------------------------------------------------------------------------

  function pay(input: PayInput): PayResult {
    const tx = store.findConsume(input);
    if (!tx) return { ok: false, status: 404, code: RespCode.NOT_FOUND, message: '查无此交易 (a gateway order exists once its front form was POSTed)' };
    if (tx.state === 'SUCCESS') return { ok: false, status: 409, code: 'ORDER_PAID', message: '订单已支付' };
    if (tx.state === 'EXPIRED') return { ok: false, status: 409, code: 'ORDER_EXPIRED', message: '订单已超时' };
    if (input.outcome === 'FAIL') {
      tx.state = 'FAILED';
      logger.info({ orderId: tx.orderId }, 'unionpay simulator: payment failed');
      return { ok: true, orderId: tx.orderId, status: 'FAILED' };
    }
    if (input.outcome !== 'SUCCESS') return { ok: false, status: 400, code: RespCode.FORMAT_ERROR, message: 'outcome must be SUCCESS or FAIL' };
    const at = new Date();
    tx.state = 'SUCCESS';
    tx.paidAt = at.getTime();
    store.settled(tx, newSettlement(at));
    logger.info({ orderId: tx.orderId, queryId: tx.queryId }, 'unionpay simulator: paid');
    if (input.notify !== false) notify(tx.backUrl, consumeResultFields(tx), 'CONSUME.SUCCESS');
    return { ok: true, orderId: tx.orderId, status: 'SUCCESS', queryId: tx.queryId };
  }

  // ---- request checks ------------------------------------------------------------------------------------------

  function authenticate(f: AcpFields): MerchantRecord | Refusal {
    if (f.version !== '5.1.0') return refuse(RespCode.FORMAT_ERROR, '报文格式错误：version 须为 5.1.0');
    if (f.signMethod !== '01') return refuse(RespCode.FORMAT_ERROR, '报文格式错误：signMethod 仅支持 01');
    const merchant = store.merchant(f.merId ?? '');
    if (!merchant) return refuse(RespCode.SIGNATURE_ERROR, `验证签名失败：商户 ${f.merId ?? ''} 未在模拟器注册`);
    if (f.certId !== merchant.certId) return refuse(RespCode.SIGNATURE_ERROR, '验证签名失败：certId 与商户签名证书不符');
    if (!verifySignature(f, merchant.publicKey)) return refuse(RespCode.SIGNATURE_ERROR, '验证签名失败');
    return merchant;
  }

  function required(f: AcpFields, names: string[]): Refusal | undefined {
    const missing = names.find((n) => !f[n]);
    return missing ? refuse(RespCode.MISSING_FIELD, `报文交易要素缺失：${missing}`) : undefined;
  }

  /** Checks shared by every consume: ids, amount, currency, times, URLs. Returns payTimeout (epoch ms). */
  function checkConsume(f: AcpFields, now: number): number | Refusal {
    if (f.accessType !== ACCESS_TYPE_MERCHANT) return refuse(RespCode.FORMAT_ERROR, 'accessType 仅支持 0（商户直连）');
    if (!ORDER_ID_PATTERN.test(f.orderId)) return refuse(RespCode.FORMAT_ERROR, 'orderId 须为 8-40 位字母或数字');
    if (!/^[1-9]\d{0,11}$/.test(f.txnAmt)) return refuse(RespCode.FORMAT_ERROR, 'txnAmt 须为正整数（单位：分）');
    if (f.currencyCode !== CURRENCY_CNY) return refuse(RespCode.FORMAT_ERROR, 'currencyCode 仅支持 156');
    const txnTime = parseAcpTime(f.txnTime)?.getTime();
    if (txnTime === undefined || txnTime > now + TXN_TIME_MAX_AHEAD_MS || txnTime < now - TXN_TIME_MAX_AGE_MS) {
      return refuse(RespCode.FORMAT_ERROR, 'txnTime无效：须为当前北京时间 YYYYMMDDhhmmss');
    }
    if (f.payTimeout !== undefined && !parseAcpTime(f.payTimeout)) return refuse(RespCode.FORMAT_ERROR, 'payTimeout 格式错误');
    if (f.backUrl !== undefined && !isHttpUrl(f.backUrl, MAX_URL_LENGTH)) return refuse(RespCode.FORMAT_ERROR, 'backUrl 须为 http(s) 地址');
    return parseAcpTime(f.payTimeout)?.getTime() ?? txnTime + DEFAULT_PAY_TIMEOUT_MS;
  }

  function newConsume(f: AcpFields, kind: 'QR' | 'GATEWAY', payTimeoutAt: number, now: number): StoredConsume {
    return {
      type: 'consume',
      kind,
      merId: f.merId,
      orderId: f.orderId,
      txnTime: f.txnTime,
      txnSubType: f.txnSubType,
      bizType: f.bizType,
      channelType: f.channelType,
      txnAmt: Number(f.txnAmt),
      backUrl: f.backUrl,
      frontUrl: f.frontUrl,
      payTimeoutAt,
      state: now > payTimeoutAt ? 'EXPIRED' : 'PENDING',
      createdAt: now,
    };
  }

  // ---- answers -------------------------------------------------------------------------------------------------

  function echo(f: AcpFields): AcpFields {
    const out: AcpFields = {};
    for (const k of ECHOED) if (f[k] !== undefined && !/[&{}[\]\r\n]/.test(f[k])) out[k] = f[k];
    return out;
  }

  function sendAnswer(res: Response, fields: AcpFields): void {
    res.status(200).type('text/plain; charset=utf-8').send(formatAcpResponse(sign(fields)));
  }

  type BackHandler = (f: AcpFields, merchant: MerchantRecord) => AcpFields | Refusal;

  const back =
    (handler: BackHandler) =>
    (req: Request, res: Response): void => {
      const f = readForm(req);
      let answer: AcpFields;
      try {
        if (!f) {
          answer = { respCode: RespCode.FORMAT_ERROR, respMsg: '报文格式错误' };
        } else {
          const merchant = authenticate(f);
          const result = isRefusal(merchant) ? merchant : handler(f, merchant);
          answer = { ...echo(f), ...result };
        }
      } catch (err) {
        logger.error({ err }, 'unionpay simulator: handler failed');
        answer = { ...(f ? echo(f) : {}), respCode: '06', respMsg: '系统错误' };
      }
      sendAnswer(res, answer);
    };

  const backTrans: BackHandler = (f, merchant) => {
    if (f.txnType === TxnType.CONSUME && f.txnSubType === TxnSubType.QR_APPLY) return applyQrCode(f, merchant);
    if (f.txnType === TxnType.REFUND) return refund(f, merchant);
    return refuse(RespCode.FORMAT_ERROR, `交易类型不支持：txnType=${f.txnType ?? ''} txnSubType=${f.txnSubType ?? ''}`);
  };

  function applyQrCode(f: AcpFields, merchant: MerchantRecord): AcpFields | Refusal {
    const missing = required(f, ['bizType', 'channelType', 'orderId', 'txnTime', 'txnAmt', 'currencyCode']);
    if (missing) return missing;
    if (f.bizType !== BizType.QR) return refuse(RespCode.FORMAT_ERROR, 'bizType 须为 000000');
    const now = Date.now();
    const payTimeoutAt = checkConsume(f, now);
    if (isRefusal(payTimeoutAt)) return payTimeoutAt;

    const existing = store.transaction(merchant.merId, f.orderId, now);
    if (existing) {
      const same = existing.type === 'consume' && existing.kind === 'QR' && existing.txnTime === f.txnTime && existing.txnAmt === Number(f.txnAmt);
      if (same && existing.state !== 'SUCCESS' && existing.state !== 'EXPIRED') {
        return { respCode: RespCode.SUCCESS, respMsg: RESP_MSG_SUCCESS, qrCode: existing.qrCode ?? '' };
      }
      return refuse(RespCode.DUPLICATE, '重复交易');
    }
    const tx = newConsume(f, 'QR', payTimeoutAt, now);
    tx.qrCode = `https://qr.95516.com/00010000/62${randomDigits(18)}`;
    store.add(tx);
    logger.info({ orderId: tx.orderId, txnAmt: tx.txnAmt, scan: scanUrl(tx.qrCode) }, 'unionpay simulator: QR code created');
    return { respCode: RespCode.SUCCESS, respMsg: RESP_MSG_SUCCESS, qrCode: tx.qrCode };
  }

  function refund(f: AcpFields, merchant: MerchantRecord): AcpFields | Refusal {
    const missing = required(f, ['txnSubType', 'bizType', 'orderId', 'origQryId', 'txnTime', 'txnAmt']);
    if (missing) return missing;
    const now = Date.now();
    if (!ORDER_ID_PATTERN.test(f.orderId)) return refuse(RespCode.FORMAT_ERROR, 'orderId 须为 8-40 位字母或数字');
    if (!/^[1-9]\d{0,11}$/.test(f.txnAmt)) return refuse(RespCode.FORMAT_ERROR, 'txnAmt 须为正整数（单位：分）');
    if (f.currencyCode !== undefined && f.currencyCode !== CURRENCY_CNY) return refuse(RespCode.FORMAT_ERROR, 'currencyCode 仅支持 156');
    const txnTime = parseAcpTime(f.txnTime)?.getTime();
    if (txnTime === undefined || Math.abs(txnTime - now) > TXN_TIME_MAX_AGE_MS) return refuse(RespCode.FORMAT_ERROR, 'txnTime无效');
    if (f.backUrl !== undefined && !isHttpUrl(f.backUrl, MAX_URL_LENGTH)) return refuse(RespCode.FORMAT_ERROR, 'backUrl 须为 http(s) 地址');

    if (store.transaction(merchant.merId, f.orderId, now)) return refuse(RespCode.DUPLICATE, '重复交易');
    const orig = store.byQuery(f.origQryId, now);
    if (!orig || orig.type !== 'consume' || orig.merId !== merchant.merId || orig.state !== 'SUCCESS') {
      return refuse(RespCode.ORIGINAL_INVALID, '原交易不存在或状态不正确');
    }
    const amount = Number(f.txnAmt);
    if (amount > store.refundable(orig)) return refuse(RespCode.ORIGINAL_MISMATCH, '与原交易信息不符：退货金额超过原交易可退金额');

    const r: StoredRefund = {
      type: 'refund',
      merId: merchant.merId,
      orderId: f.orderId,
      txnTime: f.txnTime,
      bizType: f.bizType,
      channelType: f.channelType ?? orig.channelType,
      origQryId: f.origQryId,
      origOrderId: orig.orderId,
      txnAmt: amount,
      backUrl: f.backUrl,
      state: 'PENDING',
      createdAt: now,
      ...newSettlement(new Date(now)),
    };
    store.add(r);
    logger.info({ orderId: r.orderId, origQryId: r.origQryId, txnAmt: amount }, 'unionpay simulator: refund accepted');
    if (refunds.behaviour !== 'pending') {
      const final = refunds.behaviour === 'fail' ? 'FAILED' : 'SUCCESS';
      if (refunds.delayMs > 0) {
        refunds.later(() => settle(r, final), refunds.delayMs);
      } else {
        settle(r, final);
      }
    }
    return { respCode: RespCode.SUCCESS, respMsg: RESP_MSG_SUCCESS, queryId: r.queryId ?? '', origQryId: r.origQryId, txnAmt: f.txnAmt };
  }

  const queryTrans: BackHandler = (f, merchant) => {
    if (f.txnType !== TxnType.QUERY) return refuse(RespCode.FORMAT_ERROR, 'queryTrans.do 只受理 txnType=00');
    const now = Date.now();
    let tx: StoredConsume | StoredRefund | undefined;
    if (f.queryId) {
      if (!QUERY_ID_PATTERN.test(f.queryId)) return refuse(RespCode.FORMAT_ERROR, 'queryId 格式错误');
      tx = store.byQuery(f.queryId, now);
      if (tx && tx.merId !== merchant.merId) tx = undefined;
    } else {
      const missing = required(f, ['orderId', 'txnTime']);
      if (missing) return missing;
      if (!ACP_TIME_PATTERN.test(f.txnTime)) return refuse(RespCode.FORMAT_ERROR, 'txnTime 格式错误');
      tx = store.transaction(merchant.merId, f.orderId, now);
      if (tx && tx.txnTime !== f.txnTime) tx = undefined;
    }
    if (!tx) return refuse(RespCode.NOT_FOUND, '查无此交易');

    const [origRespCode, origRespMsg] =
      tx.state === 'SUCCESS'
        ? [RespCode.SUCCESS, RESP_MSG_SUCCESS]
        : tx.state === 'PENDING'
          ? [RespCode.ACCEPTED, '交易已受理，请稍后查询交易结果']
          : tx.state === 'EXPIRED'
            ? [RespCode.FAILED, '交易失败：订单已超时']
            : [RespCode.FAILED, '交易失败'];
    const settledFields: AcpFields =
      tx.state === 'SUCCESS' && tx.queryId
        ? {
            queryId: tx.queryId,
            traceNo: tx.traceNo ?? '',
            traceTime: tx.traceTime ?? '',
            settleAmt: String(tx.txnAmt),
            settleCurrencyCode: CURRENCY_CNY,
            settleDate: tx.settleDate ?? '',
          }
        : {};
    return {
      orderId: tx.orderId,
      txnTime: tx.txnTime,
      txnAmt: String(tx.txnAmt),
      currencyCode: CURRENCY_CNY,
      respCode: RespCode.SUCCESS,
      respMsg: RESP_MSG_SUCCESS,
      origRespCode,
      origRespMsg,
      ...settledFields,
      // A refund in flight already has its queryId: the merchant got it in the refund answer.
      ...(tx.type === 'refund' ? { queryId: tx.queryId ?? '', origQryId: tx.origQryId } : {}),
      ...(tx.type === 'consume' && tx.state === 'SUCCESS' ? { accNo: MASKED_CARD, payCardType: '01' } : {}),
    };
  };

  // ---- reconciliation files ------------------------------------------------------------------------------------

  /** A merchant's China day: consumes paid that day, refunds that succeeded and were made that day, then the faults. */
  function billLines(merchant: MerchantRecord, date: string): UnionPayBillLine[] {
    const lines: UnionPayBillLine[] = [];
    for (const tx of store.merchantTransactions(merchant.merId)) {
      if (tx.state !== 'SUCCESS' || !tx.queryId || !tx.traceNo || !tx.traceTime) continue;
      if (tx.type === 'consume') {
        if (!tx.paidAt || chinaDay(new Date(tx.paidAt)) !== date) continue;
        lines.push({
          kind: 'payment',
          paymentNo: tx.orderId,
          amount: tx.txnAmt,
          status: '00',
          merId: tx.merId,
          queryId: tx.queryId,
          traceNo: tx.traceNo,
          traceTime: tx.traceTime,
          channelType: tx.channelType,
          bizType: tx.bizType,
          txnSubType: tx.txnSubType,
        });
      } else {
        if (chinaDay(new Date(tx.createdAt)) !== date) continue;
        const orig = store.byQuery(tx.origQryId);
        lines.push({
          kind: 'refund',
          paymentNo: tx.origOrderId,
          refundNo: tx.orderId,
          amount: tx.txnAmt,
          status: '00',
          merId: tx.merId,
          queryId: tx.queryId,
          traceNo: tx.traceNo,
          traceTime: tx.traceTime,
          channelType: tx.channelType,
          bizType: tx.bizType,
          txnSubType: '00',
          orig: { queryId: tx.origQryId, traceNo: orig?.traceNo ?? '000000', traceTime: orig?.traceTime ?? '0000000000', orderId: tx.origOrderId },
        });
      }
    }
    const today = chinaDay(new Date());
    return billFaults.apply(
      date,
      today,
      lines,
      (d) => {
        const s = newSettlement(new Date());
        return {
          kind: 'payment',
          paymentNo: d.paymentNo,
          amount: d.amount,
          status: '00',
          merId: merchant.merId,
          queryId: d.transactionId ?? s.queryId,
          traceNo: s.traceNo,
          traceTime: s.traceTime,
          channelType: ChannelType.MOBILE,
          bizType: BizType.QR,
          txnSubType: TxnSubType.QR_APPLY,
        };
      },
      () => '01',
    );
  }

  /** `fileTransfer.do`: signed like every answer; with the `hash` corruption, `fileContent` is altered after signing. */
  function fileTransfer(req: Request, res: Response): void {
    const f = readForm(req);
    let answer: AcpFields;
    try {
      const merchant = f ? authenticate(f) : refuse(RespCode.FORMAT_ERROR, '报文格式错误');
      answer = { ...(f ? echo(f) : {}), ...(isRefusal(merchant) ? merchant : fileFor(f!, merchant)) };
    } catch (err) {
      logger.error({ err }, 'unionpay simulator: file transfer failed');
      answer = { ...(f ? echo(f) : {}), respCode: '06', respMsg: '系统错误' };
    }
    const signed = sign(answer);
    if (billFaults.corruptionMode === 'hash' && signed.fileContent) signed.fileContent = `AAAA${signed.fileContent.slice(4)}`;
    res.status(200).type('text/plain; charset=utf-8').send(formatAcpResponse(signed));
  }

  function fileFor(f: AcpFields, merchant: MerchantRecord): AcpFields | Refusal {
    if (f.txnType !== TxnType.FILE_TRANSFER) return refuse(RespCode.FORMAT_ERROR, 'fileTransfer.do 只受理 txnType=76');
    const missing = required(f, ['txnSubType', 'bizType', 'settleDate', 'txnTime', 'fileType']);
    if (missing) return missing;
    if (f.fileType !== '00') return refuse(RespCode.FORMAT_ERROR, '模拟器只提供 fileType=00 的对账文件');
    const today = chinaDay(new Date());
    if (!/^(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/.test(f.settleDate)) return refuse(RespCode.FORMAT_ERROR, 'settleDate 格式错误：MMDD');
    const thisYear = `${today.slice(0, 4)}-${f.settleDate.slice(0, 2)}-${f.settleDate.slice(2)}`;
    const date = thisYear <= today ? thisYear : `${Number(today.slice(0, 4)) - 1}${thisYear.slice(4)}`;
    const lines = billLines(merchant, date);
    if (lines.length === 0) return refuse(RespCode.FILE_NOT_FOUND, '文件不存在');
    const { fileName, fileContent } = renderUnionPayFile(merchant.merId, date, lines, billFaults.corruptionMode);
    return { respCode: RespCode.SUCCESS, respMsg: RESP_MSG_SUCCESS, settleDate: f.settleDate, fileType: f.fileType, fileName, fileContent };
  }

  // ---- front (browser) -----------------------------------------------------------------------------------------

  function frontTrans(req: Request, res: Response): void {
    const f = readForm(req);
    const refused = (r: Refusal) => void res.status(400).type('html').send(renderGatewayError(r.respCode, r.respMsg));
    if (!f) return refused(refuse(RespCode.FORMAT_ERROR, '报文格式错误'));
    const merchant = authenticate(f);
    if (isRefusal(merchant)) return refused(merchant);
    const missing = required(f, ['txnType', 'txnSubType', 'bizType', 'channelType', 'orderId', 'txnTime', 'txnAmt', 'currencyCode', 'frontUrl']);
    if (missing) return refused(missing);
    if (f.txnType !== TxnType.CONSUME || f.txnSubType !== TxnSubType.CONSUME || f.bizType !== BizType.GATEWAY) {
      return refused(refuse(RespCode.FORMAT_ERROR, 'frontTransReq.do 在模拟器中只受理消费：txnType=01 txnSubType=01 bizType=000201'));
    }
    if (f.channelType !== ChannelType.PC && f.channelType !== ChannelType.MOBILE) {
      return refused(refuse(RespCode.FORMAT_ERROR, 'channelType 须为 07 或 08'));
    }
    if (!isHttpUrl(f.frontUrl, MAX_URL_LENGTH)) return refused(refuse(RespCode.FORMAT_ERROR, 'frontUrl 须为 http(s) 地址'));
    const now = Date.now();
    const payTimeoutAt = checkConsume(f, now);
    if (isRefusal(payTimeoutAt)) return refused(payTimeoutAt);

    let tx = store.transaction(merchant.merId, f.orderId, now);
    if (tx) {
      const same = tx.type === 'consume' && tx.kind === 'GATEWAY' && tx.txnTime === f.txnTime && tx.txnAmt === Number(f.txnAmt);
      if (!same) return refused(refuse(RespCode.DUPLICATE, '重复交易'));
    } else {
      tx = newConsume(f, 'GATEWAY', payTimeoutAt, now);
      tx.cashierRef = randomBytes(16).toString('hex');
      store.add(tx);
      logger.info({ orderId: tx.orderId, txnAmt: tx.txnAmt }, 'unionpay simulator: front order received');
    }
    const consume = tx as StoredConsume;
    if (consume.state === 'EXPIRED') return refused(refuse(RespCode.FAILED, '交易失败：订单已超时'));
    res
      .status(200)
      .type('html')
      .send(
        renderCashierPage({
          merchant: merchant.name,
          orderId: consume.orderId,
          amountText: `¥${toMajorString(consume.txnAmt)}`,
          expires: formatExpiry(consume.payTimeoutAt),
          actionUrl: cashierUrl,
          cashierRef: consume.cashierRef ?? '',
          notice: consume.state === 'SUCCESS' ? '订单已支付 — this order has been paid.' : undefined,
        }),
      );
  }

  function cashierSubmit(req: Request, res: Response): void {
    const f = readForm(req) ?? {};
    const tx = f.ref ? store.findConsume({ cashierRef: f.ref }) : undefined;
    if (!tx) {
      res.status(404).type('html').send(renderGatewayError(RespCode.NOT_FOUND, '查无此交易'));
      return;
    }
    const outcome = f.outcome === 'SUCCESS' ? 'SUCCESS' : 'FAIL';
    const result = pay({ cashierRef: f.ref, outcome });
    if (!result.ok) {
      res.status(result.status).type('html').send(renderResultPage(false, result.message, tx.frontUrl));
      return;
    }
    if (result.status === 'SUCCESS' && tx.frontUrl) {
      // UnionPay's front notification: the same signed result fields, POSTed by the browser to frontUrl.
      res.status(200).set(FRONT_FORM_HEADERS).type('html').send(renderFrontForm(sign(consumeResultFields(tx)), tx.frontUrl, 'Returning to the merchant…'));
      return;
    }
    res
      .status(200)
      .type('html')
      .send(renderResultPage(result.status === 'SUCCESS', result.status === 'SUCCESS' ? '支付成功 — paid' : '支付失败 — payment failed', tx.frontUrl));
  }

  function phonePage(qrCode: string): { status: number; html: string } {
    const tx = qrCode ? store.findConsume({ qrCode }) : undefined;
    const common = { brand: `${UNIONPAY_BRAND} 云闪付`, brandColor: UNIONPAY_COLOR, actionUrl: 'pay', payload: { qrCode } };
    if (!tx) {
      return {
        status: 404,
        html: renderPhonePage({ ...common, merchant: '—', description: '', amountText: '', buttons: [], notice: 'Unknown or invalid QR code.' }),
      };
    }
    const notice =
      tx.state === 'SUCCESS'
        ? 'This order has been paid.'
        : tx.state === 'EXPIRED'
          ? 'This order has expired and can no longer be paid.'
          : undefined;
    return {
      status: 200,
      html: renderPhonePage({
        ...common,
        merchant: store.merchant(tx.merId)?.name ?? tx.merId,
        description: `Order ${tx.orderId}`,
        amountText: `¥${toMajorString(tx.txnAmt)}`,
        details: [
          ['Order', tx.orderId],
          ['Pay before', formatExpiry(tx.payTimeoutAt)],
        ],
        buttons: [
          { label: 'Pay', fields: { outcome: 'SUCCESS' }, primary: true },
          { label: 'Fail', fields: { outcome: 'FAIL' } },
        ],
        notice,
      }),
    };
  }

  // ---- router --------------------------------------------------------------------------------------------------

  const router = express.Router();
  router.use(express.raw({ type: '*/*', limit: '1mb' }));

  router.post('/gateway/api/frontTransReq.do', frontTrans);
  router.post('/gateway/api/backTransReq.do', back(backTrans));
  router.post('/gateway/api/queryTrans.do', back(queryTrans));
  router.use('/gateway/api', (_req, res) => {
    res.status(404).type('text/plain').send('not found');
  });
  router.post('/gateway/cashier', cashierSubmit);
  router.post('/filedownload', fileTransfer);

  router.get('/scan', (req, res) => {
    const page = phonePage(typeof req.query.qrCode === 'string' ? req.query.qrCode : '');
    res.status(page.status).type('html').send(page.html);
  });

  router.post('/pay', (req, res) => {
    const body = parseJson(req.body);
    if (!isObject(body) || (body.outcome !== 'SUCCESS' && body.outcome !== 'FAIL')) {
      res.status(400).json({ code: RespCode.FORMAT_ERROR, message: 'expected JSON { orderId | qrCode, outcome: SUCCESS | FAIL }' });
      return;
    }
    const result = pay({
      orderId: str(body.orderId),
      merId: str(body.merId),
      qrCode: str(body.qrCode),
      outcome: body.outcome,
      notify: body.notify !== false,
    });
    if (!result.ok) {
      res.status(result.status).json({ code: result.code, message: result.message });
      return;
    }
    res.status(200).json({ orderId: result.orderId, status: result.status, queryId: result.queryId });
  });

  mountControlRoutes(router, {
    invalidCode: RespCode.FORMAT_ERROR,
    refunds,
    invalidBehaviour: 'refundBehaviour: success | fail | pending; refundDelayMs ≥ 0',
    invalidDelay: 'refundBehaviour: success | fail | pending; refundDelayMs ≥ 0',
    settleRefund: {
      settle: (s) => {
        const state = String(s.state);
        return (state === 'SUCCESS' || state === 'FAILED') && settleRefund(String(s.merId), String(s.orderId), state);
      },
      notFound: { code: RespCode.NOT_FOUND, message: 'no such PENDING refund (settleRefund: { merId, orderId, state: SUCCESS | FAILED })' },
    },
    dispatcher,
    billFaults,
    checkBillFaults: (body) => {
      if (isObject(body) && isObject(body.inject) && body.inject.kind === 'status') throw new Error('ZM files list successful transactions only');
    },
  });

  // ---- the rest of the handle ----------------------------------------------------------------------------------

  function registerMerchant(m: MerchantRegistration): void {
    store.registerMerchant(m);
  }

  function scanUrl(qrCode: string): string {
    return `${baseUrl}/scan?qrCode=${encodeURIComponent(qrCode)}`;
  }

  function settleRefund(merId: string, orderId: string, state: 'SUCCESS' | 'FAILED'): boolean {
    const r = store.transaction(merId, orderId);
    if (!r || r.type !== 'refund' || r.state !== 'PENDING') return false;
    settle(r, state);
    return true;
  }

  return {
    router,
    baseUrl,
    gatewayUrl,
    rootCertPem: pki.root.certPem,
    middleCertPem: pki.middle.certPem,
    signerCertPem: pki.signer.certPem,
    pki,
    store,
    get notifications() {
      return dispatcher.attempts;
    },
    registerMerchant,
    issueMerchantCredentials: (merId) => generateUnionPayMerchantCredentials({ merId, issuer: pki.middle }),
    adapterConfig(credentials, overrides = {}) {
      registerMerchant({ merId: credentials.merId, signCertPem: credentials.signCert });
      return {
        merId: credentials.merId,
        signPrivateKey: credentials.signPrivateKey,
        signCert: credentials.signCert,
        rootCert: pki.root.certPem,
        middleCert: pki.middle.certPem,
        gatewayUrl,
        fileTransferUrl: `${baseUrl}/filedownload/`,
        frontFormUrl: `${publicBaseUrl}${UNIONPAY_FRONT_FORM_PATH}`,
        ...overrides,
      };
    },
    scanUrl,
    pay,
    setRefundBehaviour: (behaviour, delayMs) => refunds.set(behaviour, delayMs),
    settleRefund,
    signFields: (fields, s) => sign(fields, s),
    formatAnswer: formatAcpResponse,
    buildNotification(fields, s) {
      const signed = sign(fields, s);
      const { body, headers } = encodeNotification(signed);
      return { fields: signed, rawBody: body, headers };
    },
    redeliver(notificationId) {
      const n = sent.get(notificationId);
      if (!n) return false;
      deliver(n);
      return true;
    },
    injectBillDiscrepancy(d) {
      if (d.kind === 'status') throw new Error('ZM files list successful transactions only: a status fault cannot be written');
      billFaults.inject(d);
    },
    corruptBill: (mode) => billFaults.corrupt(mode),
    clearBillFaults: () => billFaults.clear(),
    close() {
      dispatcher.close();
      refunds.close();
    },
  };
}

// ---- helpers -----------------------------------------------------------------------------------------------------

/** The form fields of a request: raw body (this router's parser) or an app-wide urlencoded parser's object. */
function readForm(req: Request): AcpFields | undefined {
  if (Buffer.isBuffer(req.body)) {
    try {
      return parseForm(req.body.toString('utf8'));
    } catch {
      return undefined;
    }
  }
  if (isObject(req.body)) {
    const out: AcpFields = {};
    for (const [k, v] of Object.entries(req.body)) if (typeof v === 'string') out[k] = v;
    return out;
  }
  return {};
}

function formatExpiry(epochMs: number): string {
  const t = formatAcpTime(new Date(epochMs));
  return `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)} ${t.slice(8, 10)}:${t.slice(10, 12)}:${t.slice(12, 14)} (UTC+8)`;
}
