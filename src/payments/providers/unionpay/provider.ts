import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { makeBill, type Bill } from '../../../reconciliation/bill';
import { readUnionPayFileContent } from '../../../reconciliation/unionpay-bill';
import { PaymentChannel } from '../../channels';
import { ProviderNetworkError, ProviderRejectedError, ProviderSignatureError } from '../errors';
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
import { UnionPayHttpClient } from './client';
import { UNIONPAY_DEFAULT_TIMEOUT_MS, unionPayEndpoints, unionPayFileTransferUrl, type UnionPayConfig, type UnionPayEndpoints } from './config';
import {
  assertTrustAnchors,
  certIdOf,
  formatAcpTime,
  parseAcpTime,
  parseForm,
  traceTimeToDate,
  verifySignature,
  verifyUnionPayMessage,
  type SignerTrust,
} from './crypto';
import { FRONT_FORM_HEADERS, renderFrontForm, renderFrontFormError } from './form';
import {
  ACCESS_TYPE_MERCHANT,
  ACP_ENCODING,
  ACP_TIME_PATTERN,
  ACP_VERSION,
  BizType,
  ChannelType,
  CURRENCY_CNY,
  ORDER_ID_PATTERN,
  PENDING_CODES,
  QUERY_ID_PATTERN,
  RespCode,
  SIGN_METHOD_RSA,
  SUCCESS_CODES,
  TxnSubType,
  TxnType,
  type AcpFields,
} from './types';

const PROVIDER = 'unionpay';
/** `txnAmt` is at most 12 digits of fen. */
const MAX_TXN_AMT = 999_999_999_999;

/** `refund`'s answer, with what the caller must keep to query the refund later. */
export interface UnionPayRefundResult extends RefundResult {
  /** The refund's `txnTime`: pass it back as `RefundRef.providerReference` to `queryRefund`. */
  providerReference: string;
}

/** An HTTP page for `frontFormPage`. */
export interface UnionPayPage {
  status: number;
  contentType: string;
  headers: Readonly<Record<string, string>>;
  body: string;
}

/**
 * UnionPay online gateway adapter (ACP 5.1.0, `signMethod=01` RSA certificates, direct merchant `accessType=0`).
 *
 * Channels
 * - UNIONPAY_GATEWAY: front consume (`txnType=01 txnSubType=01 bizType=000201 channelType=07|08`). UnionPay wants
 *   the browser to POST a signed form to `frontTransReq.do`; `createPayment` signs it without calling UnionPay and
 *   answers `redirectUrl = frontFormUrl?<signed fields>`, a page of this service (`frontFormPage`) that verifies
 *   the fields carry this merchant's own signature and renders the auto-submitting form. `frontUrl` = returnUrl
 *   (required), `backUrl` = notifyUrl.
 * - UNIONPAY_QR: QR code apply over `backTransReq.do` (`txnType=01 txnSubType=07 bizType=000000 channelType=08`)
 *   → `qrCode`.
 *
 * Keys the caller must keep
 * - `orderId` is the paymentNo (8–40 letters/digits). UnionPay identifies a transaction by `orderId` + `txnTime`
 *   (the request's China-time `YYYYMMDDhhmmss`), so `createPayment` returns `txnTime` as `providerReference`;
 *   `queryPayment`/`closePayment` need it back in `PaymentRef.providerReference`.
 * - `refund` returns its own `txnTime` as `providerReference` (and the refund's `queryId` as `providerRefundId`);
 *   `queryRefund` takes either in `RefundRef.providerReference`.
 *
 * Closing: ACP has no close for an unpaid consume. Every order is sent with `payTimeout` = `expiresAt`, after which
 * UnionPay refuses to take it; `closePayment` therefore only checks (by query) that it was not paid
 * (ProviderRejectedError `ORDER_PAID` if it was) and resolves. Until `payTimeout` a QR code or a front form can
 * still be paid: a success after a local close must be refunded (the contract's late-success rule).
 *
 * Verification: every answer and notification must be `version=5.1.0`, `signMethod=01`, carry a `signPubKeyCert`
 * valid now, issued by the configured middle certificate (itself issued by the root), with UnionPay's name in its
 * CN, and a valid `signature` (see `crypto.ts`). Answers that fail: ProviderSignatureError; notifications: `ok:false`.
 */
export class UnionPayProvider implements PaymentProvider {
  readonly name = 'unionpay' as const;
  readonly channels: readonly PaymentChannel[] = [PaymentChannel.UNIONPAY_GATEWAY, PaymentChannel.UNIONPAY_QR];
  /** The merchant certificate's serial number in decimal, sent as `certId`. */
  readonly certId: string;
  readonly endpoints: UnionPayEndpoints;

  private readonly http: UnionPayHttpClient;
  private readonly ownPublicKey: KeyObject;
  private readonly trust: SignerTrust;

  constructor(private readonly config: UnionPayConfig) {
    const fix = (variable: string, what: string) => new Error(`UnionPay configuration: ${variable} ${what}`);
    if (!/^[0-9A-Za-z]{1,32}$/.test(config.merId ?? '')) throw fix('UNIONPAY_MER_ID', 'must be the merchant id (15 digits)');
    let signKey: KeyObject;
    try {
      signKey = createPrivateKey(config.signPrivateKey);
    } catch {
      throw fix('UNIONPAY_SIGN_PRIVATE_KEY', 'is not a PEM private key (PKCS#8 or PKCS#1)');
    }
    const ownCert = parseCert(config.signCert, fix('UNIONPAY_SIGN_CERT', 'is not a PEM certificate'));
    const ownSpki = ownCert.publicKey.export({ type: 'spki', format: 'der' });
    if (!ownSpki.equals(createPublicKey(signKey).export({ type: 'spki', format: 'der' }))) {
      throw fix('UNIONPAY_SIGN_CERT', 'does not hold the public key of UNIONPAY_SIGN_PRIVATE_KEY');
    }
    const root = parseCert(config.rootCert, fix('UNIONPAY_ROOT_CERT', 'is not a PEM certificate'));
    const middle = parseCert(config.middleCert, fix('UNIONPAY_MIDDLE_CERT', 'is not a PEM certificate'));
    assertTrustAnchors(root, middle);
    if (!isHttpUrl(config.gatewayUrl)) throw fix('UNIONPAY_GATEWAY_URL', 'must be an http(s) URL ending in /gateway/api/');
    if (!isHttpUrl(config.frontFormUrl) || new URL(config.frontFormUrl).search !== '') {
      throw fix('the front form URL', `must be an http(s) URL without a query string: ${config.frontFormUrl}`);
    }

    this.certId = certIdOf(ownCert);
    this.ownPublicKey = ownCert.publicKey;
    this.endpoints = unionPayEndpoints(config.gatewayUrl);
    this.trust = { root, middle, allowTestEnvironmentSigner: config.allowTestEnvironmentSigner === true };
    this.http = new UnionPayHttpClient({
      merId: config.merId,
      signKey,
      certId: this.certId,
      trust: this.trust,
      timeoutMs: config.timeoutMs ?? UNIONPAY_DEFAULT_TIMEOUT_MS,
    });
  }

  async createPayment(input: CreatePaymentInput): Promise<CreatePaymentResult> {
    if (!this.channels.includes(input.channel)) throw rejected(`channel ${input.channel} is not served by UnionPay`, 'UNSUPPORTED_CHANNEL');
    if (input.currency !== 'CNY') throw rejected(`UnionPay gateway payments are in CNY, not ${input.currency}`, 'UNSUPPORTED_CURRENCY');
    assertOrderId(input.paymentNo, 'paymentNo');
    assertAmount(input.amount);
    const txnTime = formatAcpTime(new Date());
    const base: AcpFields = {
      ...this.common(),
      txnType: TxnType.CONSUME,
      orderId: input.paymentNo,
      txnTime,
      txnAmt: String(input.amount),
      currencyCode: CURRENCY_CNY,
      backUrl: input.notifyUrl,
      payTimeout: formatAcpTime(input.expiresAt),
    };

    if (input.channel === PaymentChannel.UNIONPAY_GATEWAY) {
      if (!input.returnUrl) throw rejected('a UnionPay gateway payment needs a returnUrl (sent as frontUrl)', 'PARAM_ERROR');
      const signed = this.http.sign({
        ...base,
        txnSubType: TxnSubType.CONSUME,
        bizType: BizType.GATEWAY,
        channelType: this.config.gatewayChannelType ?? ChannelType.PC,
        frontUrl: input.returnUrl,
        ...(input.clientIp ? { customerIp: input.clientIp } : {}),
      });
      const url = new URL(this.config.frontFormUrl);
      for (const [k, v] of Object.entries(signed)) url.searchParams.set(k, v);
      return {
        redirectUrl: url.toString(),
        providerReference: txnTime,
        raw: { orderId: input.paymentNo, txnTime, payTimeout: base.payTimeout, action: this.endpoints.frontTransUrl },
      };
    }

    const answer = await this.http.post(this.endpoints.backTransUrl, 'QR code apply (backTransReq.do)', {
      ...base,
      txnSubType: TxnSubType.QR_APPLY,
      bizType: BizType.QR,
      channelType: ChannelType.MOBILE,
    });
    expectEcho(answer, 'orderId', input.paymentNo);
    const code = answer.respCode;
    if (code === RespCode.SUCCESS) {
      if (!answer.qrCode) throw rejected('UnionPay answered 00 without a qrCode', 'INVALID_RESPONSE');
      return { qrCodeUrl: answer.qrCode, providerReference: txnTime, raw: audit(answer) };
    }
    if (PENDING_CODES.has(code)) {
      // The QR code may or may not exist: like no answer at all (query, or retry with the same paymentNo).
      throw new ProviderNetworkError(`UnionPay answered ${code} (${answer.respMsg ?? ''}) to the QR code apply`, PROVIDER);
    }
    throw rejectedBy(answer);
  }

  async queryPayment(input: PaymentRef): Promise<PaymentQueryResult> {
    const txnTime = input.providerReference ?? '';
    if (!ACP_TIME_PATTERN.test(txnTime)) {
      throw rejected('a UnionPay query needs providerReference = the txnTime createPayment returned', 'MISSING_TXN_TIME');
    }
    const answer = await this.query(input.channel, { orderId: input.paymentNo, txnTime });
    if (answer.respCode === RespCode.NOT_FOUND) return { state: 'NOT_FOUND', raw: audit(answer) };
    if (PENDING_CODES.has(answer.respCode)) return { state: 'PENDING', raw: audit(answer) };
    if (answer.respCode !== RespCode.SUCCESS) throw rejectedBy(answer);
    expectEcho(answer, 'orderId', input.paymentNo);

    const state = originalState(answer.origRespCode);
    const amount = parseAmount(answer.txnAmt);
    return {
      state,
      providerTransactionId: answer.queryId || undefined,
      ...(amount !== undefined ? { amount } : {}),
      paidAt: state === 'SUCCEEDED' ? traceTimeToDate(answer.traceTime, answer.txnTime || txnTime) : undefined,
      raw: audit(answer),
    };
  }

  async closePayment(input: PaymentRef): Promise<void> {
    // Without the txnTime UnionPay cannot be asked; payTimeout still ends the order there.
    if (!ACP_TIME_PATTERN.test(input.providerReference ?? '')) return;
    const q = await this.queryPayment(input);
    if (q.state === 'SUCCEEDED') {
      throw new ProviderRejectedError('the UnionPay payment is already paid', PROVIDER, 'ORDER_PAID');
    }
  }

  async refund(input: RefundInput): Promise<UnionPayRefundResult> {
    if (!input.providerTransactionId) {
      throw rejected('a UnionPay refund needs the payment queryId (providerTransactionId)', 'MISSING_ORIG_QRY_ID');
    }
    if (input.currency !== 'CNY') throw rejected(`UnionPay refunds are in CNY, not ${input.currency}`, 'UNSUPPORTED_CURRENCY');
    assertOrderId(input.refundNo, 'refundNo');
    assertAmount(input.amount);
    const qr = input.channel === PaymentChannel.UNIONPAY_QR;
    // The same txnTime on every retry: UnionPay identifies the request by orderId + txnTime (12 = already have it).
    const txnTime = formatAcpTime(input.requestedAt ?? new Date());
    const answer = await this.http.post(this.endpoints.backTransUrl, 'refund (backTransReq.do)', {
      ...this.common(),
      txnType: TxnType.REFUND,
      txnSubType: TxnSubType.DEFAULT,
      bizType: qr ? BizType.QR : BizType.GATEWAY,
      channelType: qr ? ChannelType.MOBILE : (this.config.gatewayChannelType ?? ChannelType.PC),
      orderId: input.refundNo,
      origQryId: input.providerTransactionId,
      txnTime,
      txnAmt: String(input.amount),
      currencyCode: CURRENCY_CNY,
      backUrl: input.notifyUrl,
    });
    expectEcho(answer, 'orderId', input.refundNo);
    const code = answer.respCode;
    // 00: accepted, the result comes by notification (or query). 03/04/05: not known yet. 12 (重复交易): a refund
    // under this refundNo exists already (an earlier attempt got through): the same refund, never a second one.
    if (code === RespCode.SUCCESS || PENDING_CODES.has(code) || code === RespCode.DUPLICATE) {
      return {
        state: 'PENDING',
        ...(answer.queryId ? { providerRefundId: answer.queryId } : {}),
        providerReference: txnTime,
        raw: audit(answer),
      };
    }
    throw rejectedBy(answer);
  }

  async queryRefund(input: RefundRef): Promise<RefundResult> {
    const ref = input.providerReference ?? '';
    let key: AcpFields;
    if (QUERY_ID_PATTERN.test(ref)) key = { queryId: ref };
    else if (input.requestedAt) key = { orderId: input.refundNo, txnTime: formatAcpTime(input.requestedAt) };
    else if (ACP_TIME_PATTERN.test(ref)) key = { orderId: input.refundNo, txnTime: ref };
    else {
      throw rejected('a UnionPay refund query needs providerReference = the refund txnTime (or its queryId)', 'MISSING_TXN_TIME');
    }
    const answer = await this.query(input.channel, key);
    if (PENDING_CODES.has(answer.respCode)) return { state: 'PENDING', raw: audit(answer) };
    if (answer.respCode !== RespCode.SUCCESS) throw rejectedBy(answer);
    if (key.orderId) expectEcho(answer, 'orderId', key.orderId);
    const state = originalState(answer.origRespCode);
    return {
      state: state === 'SUCCEEDED' ? 'SUCCEEDED' : state === 'PENDING' ? 'PENDING' : 'FAILED',
      ...(answer.queryId ? { providerRefundId: answer.queryId } : {}),
      raw: audit(answer),
    };
  }

  /**
   * The day's reconciliation file: `fileTransfer.do` (`txnType=76`, `fileType=00`, `settleDate` = the day's MMDD) on
   * UnionPay's file host answers a signed message whose `fileContent` (covered by the signature) is the deflated zip
   * holding the ZM file (`reconciliation/unionpay-bill.ts`). `respCode=98` (no file for that day): an empty bill.
   * UnionPay's clearing day ends at 23:00 China time; like the other providers here, a day is the calendar day.
   */
  async fetchBill(input: BillQuery): Promise<Bill> {
    const url = unionPayFileTransferUrl(this.config);
    if (!url) throw rejected('no fileTransfer.do host for this gateway: configure fileTransferUrl (UNIONPAY_FILE_TRANSFER_URL)', 'NOT_CONFIGURED');
    const settleDate = input.date.slice(5, 7) + input.date.slice(8, 10);
    const answer = await this.http.post(url, 'reconciliation file (fileTransfer.do)', {
      version: ACP_VERSION,
      encoding: ACP_ENCODING,
      signMethod: SIGN_METHOD_RSA,
      txnType: TxnType.FILE_TRANSFER,
      txnSubType: '01',
      bizType: BizType.QR,
      accessType: ACCESS_TYPE_MERCHANT,
      merId: this.config.merId,
      settleDate,
      txnTime: formatAcpTime(new Date()),
      fileType: '00',
    });
    if (answer.respCode === RespCode.FILE_NOT_FOUND) return makeBill(this.name, input.date, []);
    if (answer.respCode !== RespCode.SUCCESS) throw rejectedBy(answer);
    if (answer.settleDate && answer.settleDate !== settleDate) {
      throw new ProviderSignatureError(`UnionPay answered the file of ${answer.settleDate}, not ${settleDate}`, PROVIDER);
    }
    if (!answer.fileContent) throw rejected('fileTransfer.do answer lacks fileContent', 'INVALID_RESPONSE');
    return readUnionPayFileContent(answer.fileContent, { date: input.date, merId: this.config.merId });
  }

  /**
   * Verifies and decodes a notification: the form UnionPay POSTs to `backUrl` (and the same signed fields it POSTs
   * through the browser to `frontUrl`, which this also accepts). Dedupe key: `${queryId}:${txnType}`.
   */
  async parseNotification(input: RawNotification): Promise<ParsedNotification> {
    let fields: AcpFields;
    try {
      fields = parseForm(input.rawBody.toString('utf8'));
    } catch (err) {
      return { ok: false, reason: `not a form body: ${(err as Error).message}` };
    }
    const notificationId = fields.queryId && fields.txnType ? `${fields.queryId}:${fields.txnType}` : undefined;
    const paymentNo = fields.txnType === TxnType.CONSUME ? fields.orderId : undefined;
    const context = { ...(notificationId ? { notificationId } : {}), ...(paymentNo ? { paymentNo } : {}) };
    if (Object.keys(fields).length === 0) return { ok: false, reason: 'empty notification' };

    const verified = verifyUnionPayMessage(fields, this.trust);
    if (!verified.ok) return { ok: false, reason: verified.reason, ...context };
    if (!notificationId) return { ok: false, reason: 'notification without queryId or txnType', ...context };

    const event = toEvent(fields);
    if (!event) return { ok: false, reason: `malformed txnType ${fields.txnType} notification`, ...context };
    const mismatch = fields.merId !== this.config.merId ? `merId ${fields.merId ?? '(none)'} is not this merchant's ${this.config.merId}` : undefined;
    return { ok: true, notificationId, event, payload: audit(fields), ...(mismatch ? { mismatch } : {}) };
  }

  /** UnionPay wants HTTP 200 (within 10 s) for an accepted notification; anything else is retried. */
  notificationReply(ok: boolean): ProviderReply {
    return ok ? { status: 200, contentType: 'text/plain', body: 'ok' } : { status: 400, contentType: 'text/plain', body: 'fail' };
  }

  /**
   * The page behind a UNIONPAY_GATEWAY `redirectUrl`: `query` is its query string (or parsed params). It renders
   * the auto-submitting form to `frontTransReq.do` only for fields this merchant signed itself (merId, certId,
   * signature over exactly these fields) and only before `payTimeout`; otherwise an error page (400 / 410).
   * The form's target is always the configured gateway, never taken from the request.
   */
  frontFormPage(query: string | URLSearchParams): UnionPayPage {
    const page = (status: number, body: string): UnionPayPage => ({
      status,
      contentType: 'text/html; charset=utf-8',
      headers: FRONT_FORM_HEADERS,
      body,
    });
    let fields: AcpFields;
    try {
      fields = parseForm(typeof query === 'string' ? query.replace(/^\?/, '') : query);
    } catch {
      return page(400, renderFrontFormError('This payment link is not valid.'));
    }
    if (
      fields.merId !== this.config.merId ||
      fields.certId !== this.certId ||
      fields.txnType !== TxnType.CONSUME ||
      !verifySignature(fields, this.ownPublicKey)
    ) {
      return page(400, renderFrontFormError('This payment link is not valid.'));
    }
    const timeout = parseAcpTime(fields.payTimeout);
    if (timeout && timeout.getTime() < Date.now()) return page(410, renderFrontFormError('This payment link has expired.'));
    return page(200, renderFrontForm(fields, this.endpoints.frontTransUrl));
  }

  private common(): AcpFields {
    return {
      version: ACP_VERSION,
      encoding: ACP_ENCODING,
      signMethod: SIGN_METHOD_RSA,
      accessType: ACCESS_TYPE_MERCHANT,
      merId: this.config.merId,
    };
  }

  private query(channel: PaymentChannel, key: AcpFields): Promise<AcpFields> {
    return this.http.post(this.endpoints.queryTransUrl, 'query (queryTrans.do)', {
      ...this.common(),
      txnType: TxnType.QUERY,
      txnSubType: TxnSubType.DEFAULT,
      bizType: channel === PaymentChannel.UNIONPAY_QR ? BizType.QR : BizType.GATEWAY,
      ...key,
    });
  }
}

function originalState(origRespCode: string | undefined): Exclude<ProviderPaymentState, 'NOT_FOUND' | 'CLOSED'> {
  if (origRespCode && SUCCESS_CODES.has(origRespCode)) return 'SUCCEEDED';
  if (origRespCode && PENDING_CODES.has(origRespCode)) return 'PENDING';
  return 'FAILED';
}

/** The normalized event, or undefined when a verified notification lacks what its txnType must carry. */
function toEvent(f: AcpFields): NotificationEvent | undefined {
  const amount = parseAmount(f.txnAmt);
  if (f.txnType === TxnType.CONSUME) {
    if (!f.orderId || amount === undefined) return undefined;
    const succeeded = SUCCESS_CODES.has(f.respCode);
    return {
      type: 'payment',
      paymentNo: f.orderId,
      status: succeeded ? 'SUCCEEDED' : 'FAILED',
      providerTransactionId: f.queryId,
      amount,
      // Any other numeric code is passed on as sent (e.g. `840`), so the processor's currency check flags it: the
      // amount is in that currency's minor units, never CNY fen.
      ...(f.currencyCode ? { currency: f.currencyCode === CURRENCY_CNY ? 'CNY' : f.currencyCode } : {}),
      ...(succeeded ? { paidAt: traceTimeToDate(f.traceTime, f.txnTime) } : {}),
    };
  }
  if (f.txnType === TxnType.REFUND) {
    if (!f.orderId) return undefined;
    const status: ProviderRefundState = SUCCESS_CODES.has(f.respCode) ? 'SUCCEEDED' : 'FAILED';
    return { type: 'refund', refundNo: f.orderId, status, ...(amount !== undefined ? { amount } : {}), providerRefundId: f.queryId };
  }
  return { type: 'ignored', reason: `txnType ${f.txnType}` };
}

function parseCert(pem: string, error: Error): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw error;
  }
}

function assertOrderId(value: string, what: string): void {
  if (!ORDER_ID_PATTERN.test(value)) {
    throw rejected(`UnionPay needs ${what} of 8 to 40 letters and digits, got ${JSON.stringify(value)}`, 'PARAM_ERROR');
  }
}

function assertAmount(amount: number): void {
  if (!Number.isSafeInteger(amount) || amount <= 0 || amount > MAX_TXN_AMT) {
    throw rejected(`UnionPay amounts are positive integers of fen (at most 12 digits): ${amount}`, 'PARAM_ERROR');
  }
}

function parseAmount(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,12}$/.test(v) ? Number(v) : undefined;
}

/** A verified answer about another order cannot be acted on. */
function expectEcho(answer: AcpFields, field: string, expected: string): void {
  if (answer[field] !== undefined && answer[field] !== expected) {
    throw new ProviderSignatureError(`UnionPay answered about ${field} ${answer[field]}, not ${expected}`, PROVIDER);
  }
}

/** The answer without the bulky certificate and the signature. */
function audit(fields: AcpFields): AcpFields {
  const { signPubKeyCert: _cert, signature: _sig, ...rest } = fields;
  return rest;
}

function rejected(message: string, code: string): ProviderRejectedError {
  return new ProviderRejectedError(message, PROVIDER, code);
}

function rejectedBy(answer: AcpFields): ProviderRejectedError {
  const code = answer.respCode || 'NO_RESP_CODE';
  return new ProviderRejectedError(answer.respMsg ? `UnionPay ${code}: ${answer.respMsg}` : `UnionPay answered ${code}`, PROVIDER, code);
}

function isHttpUrl(v: string | undefined): boolean {
  try {
    const u = new URL(v ?? '');
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}
