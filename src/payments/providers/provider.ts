import type { Bill } from '../../reconciliation/bill';
import type { PaymentChannel, ProviderName } from '../channels';

/**
 * The contract every payment provider adapter honours.
 *
 * One adapter instance serves one merchant's credentials for one provider (WeChat Pay, Alipay, UnionPay, Stripe);
 * the registry (`registry.ts`) maps (merchant, channel) to it. Adapters speak the provider's real wire protocol over
 * HTTP to a configurable base URL (the real provider, or the built-in simulator: adapters cannot tell and must not
 * care). They hold no database state: the payments service saves every merchant number (`paymentNo`, `refundNo`)
 * before an adapter is called, and the callbacks processor compares a notification with local state.
 *
 * Amounts cross this interface in minor units (fen/cents); the adapter converts at its edge (Alipay: yuan strings).
 * Failures are `ProviderError`s (`errors.ts`): network / rejected / signature.
 */
export interface PaymentProvider {
  readonly name: ProviderName;
  /** Channels this adapter can create payments for. */
  readonly channels: readonly PaymentChannel[];

  /** Create the payment at the provider (WeChat: /v3/pay/transactions/{native|jsapi|h5}). */
  createPayment(input: CreatePaymentInput): Promise<CreatePaymentResult>;
  /** Ask the provider for the payment's state, by merchant number. */
  queryPayment(input: PaymentRef): Promise<PaymentQueryResult>;
  /**
   * Close an unpaid payment so it can no longer be paid. Resolves when the provider confirms it is closed (or never
   * existed there). Throws ProviderRejectedError when it cannot be closed (e.g. already paid: query it then).
   */
  closePayment(input: PaymentRef): Promise<void>;
  /** Start a refund; `refundNo` is reused verbatim on every retry so the provider deduplicates it. */
  refund(input: RefundInput): Promise<RefundResult>;
  /** Ask the provider for a refund's state. */
  queryRefund(input: RefundRef): Promise<RefundResult>;
  /**
   * Verify and decode one raw notification (signature on the raw body, timestamp window, decryption, the provider's
   * own merchant/app ids against this adapter's configuration). Never throws for a bad notification: it answers
   * `{ ok: false }` with the reason. Local checks (known paymentNo, amount) are the processor's job.
   */
  parseNotification(input: RawNotification): Promise<ParsedNotification>;
  /** The HTTP reply the provider expects for an accepted (`ok`) or refused notification. */
  notificationReply(ok: boolean, message?: string): ProviderReply;
  /**
   * The provider's bill of one China calendar day (UTC+8): every payment collected and refund made that day, read
   * from the provider's own bill (WeChat tradebill, Alipay bill download, UnionPay reconciliation file, Stripe balance
   * transactions) and normalized (`reconciliation/bill.ts`). A day without transactions is an empty bill. A file that
   * cannot be trusted (hash mismatch, truncated, unexpected columns, wrong encoding, rows not adding up to its own
   * summary) throws `BillFormatError`; transport and refusals throw `ProviderError`s. Optional: an adapter whose
   * provider offers no bill leaves it out, and its days cannot be reconciled.
   */
  fetchBill?(input: BillQuery): Promise<Bill>;
}

export interface BillQuery {
  /** `YYYY-MM-DD`, a China calendar day; today at the latest. */
  date: string;
}

export interface PaymentRef {
  channel: PaymentChannel;
  /** The merchant's order number at the provider (`out_trade_no`, `orderId`, …). */
  paymentNo: string;
  /** The provider's own reference when it has one (Stripe's PaymentIntent id). */
  providerReference?: string | null;
}

export interface CreatePaymentInput extends PaymentRef {
  amount: number;
  currency: string;
  description: string;
  /** Provider-side expiry (`time_expire`, `timeout_express`): the payment stops being payable then. */
  expiresAt: Date;
  notifyUrl: string;
  /** WECHAT_JSAPI: the payer's openid. */
  openid?: string | null;
  /** WECHAT_H5, UNIONPAY: the payer's IP address. */
  clientIp?: string | null;
  /** Browser channels: where the provider's page sends the customer back. */
  returnUrl?: string | null;
}

export interface CreatePaymentResult {
  /** The string to encode as a QR code (WeChat `code_url`, Alipay `qr_code`, UnionPay `qrCode`). */
  qrCodeUrl?: string;
  /** Where the browser goes (WeChat `h5_url`, Alipay page/WAP URL, UnionPay front gateway). */
  redirectUrl?: string;
  /** WECHAT_JSAPI: the signed parameters for `wx.requestPayment`. */
  jsapiParams?: Record<string, string>;
  /** STRIPE_CARD: the PaymentIntent's client secret. */
  clientSecret?: string;
  /** The provider's handle for this payment (prepay_id, PaymentIntent id), kept on the payment. */
  providerReference?: string;
  /** The provider's answer as received, kept for audit (no secrets). */
  raw: unknown;
}

/** What the provider says a payment is. NOT_FOUND: it has no such payment (e.g. an Alipay QR never scanned). */
export type ProviderPaymentState = 'PENDING' | 'SUCCEEDED' | 'FAILED' | 'CLOSED' | 'NOT_FOUND';

export interface PaymentQueryResult {
  state: ProviderPaymentState;
  providerTransactionId?: string;
  /** Amount the provider says was paid, minor units. */
  amount?: number;
  paidAt?: Date;
  raw: unknown;
}

export interface RefundRef {
  channel: PaymentChannel;
  paymentNo: string;
  /** `out_refund_no` / `out_request_no` / … */
  refundNo: string;
  providerReference?: string | null;
  /**
   * When the refund was first requested (it never changes). Providers that identify a request by its time as well
   * as its number (UnionPay's `txnTime`) use it, so every retry is the same request and a query finds it. The
   * payments service always passes it.
   */
  requestedAt?: Date;
}

export interface RefundInput extends RefundRef {
  providerTransactionId?: string | null;
  amount: number;
  /** The payment's whole amount (WeChat wants it). */
  totalAmount: number;
  currency: string;
  reason?: string | null;
  notifyUrl: string;
}

export type ProviderRefundState = 'PENDING' | 'SUCCEEDED' | 'FAILED';

export interface RefundResult {
  state: ProviderRefundState;
  providerRefundId?: string;
  raw: unknown;
}

export interface RawNotification {
  /** Header names in lower case. */
  headers: Record<string, string | undefined>;
  /** The body exactly as received; signatures are checked on these bytes. */
  rawBody: Buffer;
}

export type NotificationEvent =
  | {
      type: 'payment';
      paymentNo: string;
      status: 'SUCCEEDED' | 'FAILED' | 'CLOSED';
      providerTransactionId?: string;
      /** Minor units, as the provider states it; compared with the payment by the processor. */
      amount: number;
      currency?: string;
      paidAt?: Date;
    }
  | {
      type: 'refund';
      paymentNo?: string;
      refundNo: string;
      status: ProviderRefundState;
      amount?: number;
      providerRefundId?: string;
    }
  /** A verified notification that carries nothing to apply (e.g. an Alipay WAIT_BUYER_PAY). */
  | { type: 'ignored'; paymentNo?: string; reason: string };

export type ParsedNotification =
  | {
      ok: true;
      /** The provider's notification id (WeChat `id`, Alipay `notify_id`, Stripe `evt_…`): the inbox's dedupe key. */
      notificationId: string;
      event: NotificationEvent;
      /** Set when the signature is valid but the provider's merchant/app ids are not this adapter's: flag it. */
      mismatch?: string;
      /** The decoded payload, kept for audit. */
      payload: unknown;
    }
  | { ok: false; reason: string; notificationId?: string; paymentNo?: string };

export interface ProviderReply {
  status: number;
  body?: string;
  contentType?: string;
}
