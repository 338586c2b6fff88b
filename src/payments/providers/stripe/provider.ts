import type Stripe from 'stripe';
import { chinaDayRange, type Bill } from '../../../reconciliation/bill';
import { stripeBillFromBalanceTransactions } from '../../../reconciliation/stripe-bill';
import { PaymentChannel } from '../../channels';
import { ProviderRejectedError } from '../errors';
import type {
  BillQuery,
  CreatePaymentInput,
  CreatePaymentResult,
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
import { createStripeClient, toProviderError } from './client';
import { keyLivemode, STRIPE_WEBHOOK_TOLERANCE_SECONDS, type StripeConfig } from './config';
import {
  expandableId,
  METADATA_PAYMENT_NO,
  METADATA_REFUND_NO,
  paymentState,
  refundState,
  toNotificationEvent,
} from './mapping';

const PROVIDER = 'stripe';
/** Stripe metadata values are limited to 500 characters; descriptions are kept to 1000 here. */
const METADATA_VALUE_MAX = 500;
const DESCRIPTION_MAX = 1000;
/** How many refunds of one payment are scanned when looking one up by `refundNo`. */
const REFUND_SCAN_MAX = 1000;
const REFUND_REASONS: ReadonlySet<string> = new Set(['duplicate', 'fraudulent', 'requested_by_customer']);

type RefundTarget = { payment_intent: string } | { charge: string };

/**
 * Stripe adapter for card payments (PaymentIntents, automatic capture) through the `stripe` package.
 *
 * How the interface maps onto Stripe
 * - `createPayment` creates a PaymentIntent (`payment_method_types: ['card']`, `metadata.paymentNo`) with the
 *   idempotency key `payment-intent:<paymentNo>`: the same paymentNo again answers the same intent (Stripe keeps
 *   idempotency keys for 24 hours; the same paymentNo with other parameters is `idempotency_error`). The browser
 *   confirms it with the client secret. `notifyUrl` is not sent: Stripe posts to the account's webhook endpoint.
 * - PaymentIntents never expire: `expiresAt` is not sent, and the service's expiry sweeper ends an unpaid payment
 *   with `closePayment` (which cancels the intent, so it can no longer be paid).
 * - `PaymentRef.providerReference` is the PaymentIntent id (`pi_…`) returned by `createPayment`. Without it (the
 *   create call timed out) the intent is found by Search API on `metadata['paymentNo']`, which Stripe documents as
 *   eventually consistent (under a minute): a NOT_FOUND right after a lost create answer may be lag. Nobody can pay
 *   such an intent, though: its client secret never reached a browser.
 * - Refunds carry `metadata.refundNo` and the idempotency key `refund:<refundNo>`. Before creating one, the
 *   payment's refunds are listed and an existing refund with that refundNo is answered instead, so a retry after
 *   the 24-hour idempotency window still never refunds twice. The refund targets the PaymentIntent given as
 *   `providerReference` (`pi_…`) or `providerTransactionId` (`pi_…`, or a charge `ch_…`), else the one found by
 *   paymentNo.
 * - `queryRefund` wants the refund id (`re_…`, the `providerRefundId` of a RefundResult) as
 *   `RefundRef.providerReference`; given a `pi_…` there, or nothing, it lists the payment's refunds and matches
 *   `metadata.refundNo`.
 * - Webhooks: `Stripe-Signature` verified by `stripe.webhooks.constructEvent` on the raw bytes (HMAC-SHA256 with
 *   the `whsec_` secret, any of several `v1` signatures during a secret roll, timestamp at most 300 s old; a
 *   timestamp more than 300 s in the future is refused here too). Events map as described in `mapping.ts`;
 *   out-of-order delivery is the processor's concern (each event's `created` stays in the payload).
 *
 * Amounts: Stripe's `amount` is in the currency's smallest unit, which is what minor units are here, for
 * zero-decimal currencies too (JPY 500 is ¥500, not ¥5).
 */
export class StripeProvider implements PaymentProvider {
  readonly name = 'stripe' as const;
  readonly channels: readonly PaymentChannel[] = [PaymentChannel.STRIPE_CARD];

  private readonly stripe: Stripe;
  private readonly livemode: boolean | undefined;

  constructor(private readonly config: StripeConfig) {
    if (!/^[sr]k_(test|live)_\S+$/.test(config.secretKey ?? '')) {
      throw new Error('Stripe secret key must look like sk_test_… or sk_live_… (STRIPE_SECRET_KEY)');
    }
    if (!config.webhookSecret || /\s/.test(config.webhookSecret)) {
      throw new Error('Stripe webhook signing secret must be the endpoint\'s whsec_… value, without whitespace (STRIPE_WEBHOOK_SECRET)');
    }
    this.stripe = createStripeClient(config);
    this.livemode = keyLivemode(config.secretKey);
  }

  async createPayment(input: CreatePaymentInput): Promise<CreatePaymentResult> {
    if (input.channel !== PaymentChannel.STRIPE_CARD) {
      throw rejected(`channel ${input.channel} is not served by Stripe`, 'UNSUPPORTED_CHANNEL');
    }
    if (!Number.isSafeInteger(input.amount) || input.amount <= 0) {
      throw rejected(`amount must be a positive integer in minor units, got ${input.amount}`, 'PARAM_ERROR');
    }
    const currency = input.currency.toLowerCase();
    if (!/^[a-z]{3}$/.test(currency)) throw rejected(`currency must be an ISO 4217 code, got ${input.currency}`, 'PARAM_ERROR');

    const params: Stripe.PaymentIntentCreateParams = {
      amount: input.amount,
      currency,
      description: truncate(input.description, DESCRIPTION_MAX),
      metadata: { [METADATA_PAYMENT_NO]: input.paymentNo },
      payment_method_types: ['card'],
    };
    const pi = await this.call('create PaymentIntent', () =>
      this.stripe.paymentIntents.create(params, { idempotencyKey: `payment-intent:${input.paymentNo}` }),
    );
    if (typeof pi.client_secret !== 'string' || !pi.client_secret) {
      throw rejected(`PaymentIntent ${pi.id} came back without a client_secret`, 'INVALID_RESPONSE');
    }
    return { clientSecret: pi.client_secret, providerReference: pi.id, raw: redact(pi) };
  }

  async queryPayment(input: PaymentRef): Promise<PaymentQueryResult> {
    const pi = await this.findIntent(input);
    if (!pi) return { state: 'NOT_FOUND', raw: { paymentNo: input.paymentNo, providerReference: input.providerReference ?? null } };
    const state = paymentState(pi.status);
    if (!state) throw rejected(`unknown PaymentIntent status ${String(pi.status)}`, 'UNKNOWN_STATUS');
    const charge = typeof pi.latest_charge === 'object' && pi.latest_charge !== null ? pi.latest_charge : undefined;
    const paid = state === 'SUCCEEDED';
    return {
      state,
      providerTransactionId: paid ? (expandableId(pi.latest_charge) ?? pi.id) : undefined,
      amount: paid ? pi.amount_received : pi.amount,
      paidAt: paid && charge ? new Date(charge.created * 1000) : undefined,
      raw: redact(pi),
    };
  }

  async closePayment(input: PaymentRef): Promise<void> {
    const id = isIntentId(input.providerReference) ? input.providerReference : (await this.searchIntent(input.paymentNo))?.id;
    // Never created there: nothing can pay it.
    if (!id) return;
    try {
      await this.stripe.paymentIntents.cancel(id, { cancellation_reason: 'abandoned' });
    } catch (err) {
      const e = toProviderError(err, `cancel PaymentIntent ${id}`);
      if (!(e instanceof ProviderRejectedError)) throw e;
      if (e.providerCode === 'resource_missing') return;
      if (e.providerCode !== 'payment_intent_unexpected_state') throw e;
      // Stripe attaches the intent to this error; fetch it when an older API version did not.
      const attached = (err as { payment_intent?: { status?: string } }).payment_intent;
      const status = attached?.status ?? (await this.retrieveIntent(id))?.status;
      if (status === 'canceled') return;
      if (status === 'succeeded') throw rejected(`PaymentIntent ${id} has succeeded and cannot be canceled`, 'ORDER_PAID', e.httpStatus);
      if (status === 'processing') {
        throw rejected(`PaymentIntent ${id} is processing a payment and cannot be canceled now`, 'PAYMENT_PROCESSING', e.httpStatus);
      }
      throw e;
    }
  }

  async refund(input: RefundInput): Promise<RefundResult> {
    if (!Number.isSafeInteger(input.amount) || input.amount <= 0) {
      throw rejected(`refund amount must be a positive integer in minor units, got ${input.amount}`, 'PARAM_ERROR');
    }
    const target = await this.refundTarget(input);
    const existing = await this.findRefund(target, input.refundNo);
    if (existing) {
      if (existing.amount !== input.amount) {
        throw rejected(
          `refund ${input.refundNo} exists at Stripe (${existing.id}) for ${existing.amount}, not ${input.amount}`,
          'idempotency_error',
          400,
        );
      }
      return refundResult(existing);
    }
    const metadata: Record<string, string> = { [METADATA_REFUND_NO]: input.refundNo, [METADATA_PAYMENT_NO]: input.paymentNo };
    if (input.reason && !REFUND_REASONS.has(input.reason)) metadata.reason = truncate(input.reason, METADATA_VALUE_MAX);
    const params: Stripe.RefundCreateParams = {
      ...target,
      amount: input.amount,
      metadata,
      ...(input.reason && REFUND_REASONS.has(input.reason) ? { reason: input.reason as Stripe.RefundCreateParams.Reason } : {}),
    };
    const refund = await this.call('create Refund', () =>
      this.stripe.refunds.create(params, { idempotencyKey: `refund:${input.refundNo}` }),
    );
    return refundResult(refund);
  }

  async queryRefund(input: RefundRef): Promise<RefundResult> {
    const ref = input.providerReference ?? undefined;
    if (ref && ref.startsWith('re_')) {
      const refund = await this.call(`retrieve Refund ${ref}`, () => this.stripe.refunds.retrieve(ref));
      const refundNo = refund.metadata?.[METADATA_REFUND_NO];
      if (refundNo && refundNo !== input.refundNo) {
        throw rejected(`Refund ${ref} belongs to refund ${refundNo}, not ${input.refundNo}`, 'REFUND_MISMATCH');
      }
      return refundResult(refund);
    }
    const target = isIntentId(ref) ? { payment_intent: ref } : await this.refundTarget({ ...input, providerReference: null });
    const found = await this.findRefund(target, input.refundNo);
    if (!found) throw rejected(`no refund ${input.refundNo} at Stripe`, 'resource_missing', 404);
    return refundResult(found);
  }

  async parseNotification(input: RawNotification): Promise<ParsedNotification> {
    const header = input.headers['stripe-signature'];
    if (!header) return { ok: false, reason: 'missing Stripe-Signature header' };
    let event: Stripe.Event;
    try {
      event = this.stripe.webhooks.constructEvent(input.rawBody, header, this.config.webhookSecret, STRIPE_WEBHOOK_TOLERANCE_SECONDS);
    } catch (err) {
      if (err instanceof SyntaxError) return { ok: false, reason: 'body is not JSON' };
      // stripe-node's messages go on with advice; the first sentence is the reason.
      const message = err instanceof Error ? err.message.split(/\n|\. /)[0].trim() : String(err);
      return { ok: false, reason: `signature verification failed: ${message}` };
    }
    // stripe-node only refuses old timestamps; a signature dated far ahead is as suspicious (a replay prepared early).
    const t = /(?:^|,)t=(\d{1,12})(?:,|$)/.exec(header)?.[1];
    if (t !== undefined && Number(t) - Math.floor(Date.now() / 1000) > STRIPE_WEBHOOK_TOLERANCE_SECONDS) {
      return { ok: false, reason: 'signature verification failed: timestamp too far in the future' };
    }
    if (!isEvent(event)) return { ok: false, reason: 'not a Stripe event' };

    const mapped = toNotificationEvent(event);
    if (!mapped) return { ok: false, reason: `malformed ${event.type} event`, notificationId: event.id };
    const mismatch = this.mismatch(event);
    return { ok: true, notificationId: event.id, event: mapped, payload: event, ...(mismatch ? { mismatch } : {}) };
  }

  /**
   * A day's bill: the balance transactions created in that China day (`created[gte]`/`created[lt]`), every page,
   * with each one's source (charge or refund) and its PaymentIntent expanded, so the merchant numbers in their
   * metadata name the payment or refund (`reconciliation/stripe-bill.ts`).
   */
  async fetchBill(input: BillQuery): Promise<Bill> {
    const { start, end } = chinaDayRange(input.date);
    const transactions = await this.call(`list balance transactions of ${input.date}`, async () => {
      const all: Stripe.BalanceTransaction[] = [];
      const list = this.stripe.balanceTransactions.list({
        created: { gte: Math.floor(start.getTime() / 1000), lt: Math.floor(end.getTime() / 1000) },
        limit: 100,
        expand: ['data.source', 'data.source.payment_intent'],
      });
      for await (const txn of list) all.push(txn);
      return all;
    });
    return stripeBillFromBalanceTransactions(transactions, { date: input.date });
  }

  notificationReply(ok: boolean): ProviderReply {
    if (ok) return { status: 200, contentType: 'application/json', body: '{"received":true}' };
    return { status: 400, contentType: 'text/plain; charset=utf-8', body: 'Webhook signature verification failed' };
  }

  // ---- helpers ---------------------------------------------------------------------------------------------------

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toProviderError(err, what);
    }
  }

  /** The intent by id (with its latest charge expanded), or `undefined` when Stripe has no such intent. */
  private async retrieveIntent(id: string): Promise<Stripe.PaymentIntent | undefined> {
    try {
      return await this.stripe.paymentIntents.retrieve(id, { expand: ['latest_charge'] });
    } catch (err) {
      const e = toProviderError(err, `retrieve PaymentIntent ${id}`);
      if (e instanceof ProviderRejectedError && e.providerCode === 'resource_missing') return undefined;
      throw e;
    }
  }

  /** By PaymentIntent id when known, else by `metadata.paymentNo` (Search API). */
  private async findIntent(ref: PaymentRef): Promise<Stripe.PaymentIntent | undefined> {
    if (!isIntentId(ref.providerReference)) return this.searchIntent(ref.paymentNo);
    const pi = await this.retrieveIntent(ref.providerReference);
    const owner = pi?.metadata?.[METADATA_PAYMENT_NO];
    if (pi && owner && owner !== ref.paymentNo) {
      throw rejected(`PaymentIntent ${pi.id} belongs to payment ${owner}, not ${ref.paymentNo}`, 'PAYMENT_MISMATCH');
    }
    return pi;
  }

  /**
   * The intent created for `paymentNo`, found with the Search API. Should several exist (a create retried after the
   * idempotency key expired), a succeeded one wins, then the newest one that is not canceled.
   */
  private async searchIntent(paymentNo: string): Promise<Stripe.PaymentIntent | undefined> {
    const query = `metadata['${METADATA_PAYMENT_NO}']:'${paymentNo.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    const result = await this.call(`search PaymentIntents for ${paymentNo}`, () =>
      this.stripe.paymentIntents.search({ query, limit: 10, expand: ['data.latest_charge'] }),
    );
    const found = result.data.filter((pi) => pi.metadata?.[METADATA_PAYMENT_NO] === paymentNo).sort((a, b) => b.created - a.created);
    return found.find((pi) => pi.status === 'succeeded') ?? found.find((pi) => pi.status !== 'canceled') ?? found[0];
  }

  private async refundTarget(input: RefundRef & { providerTransactionId?: string | null }): Promise<RefundTarget> {
    if (isIntentId(input.providerReference)) return { payment_intent: input.providerReference };
    const tx = input.providerTransactionId ?? undefined;
    if (isIntentId(tx)) return { payment_intent: tx };
    if (tx && /^(ch|py)_/.test(tx)) return { charge: tx };
    const pi = await this.searchIntent(input.paymentNo);
    if (!pi) throw rejected(`no PaymentIntent for payment ${input.paymentNo} at Stripe`, 'resource_missing', 404);
    return { payment_intent: pi.id };
  }

  /** The refund of `target` whose `metadata.refundNo` is `refundNo`, by listing the payment's refunds. */
  private async findRefund(target: RefundTarget, refundNo: string): Promise<Stripe.Refund | undefined> {
    return this.call(`list Refunds of ${Object.values(target)[0]}`, async () => {
      let seen = 0;
      for await (const refund of this.stripe.refunds.list({ ...target, limit: 100 })) {
        if (refund.metadata?.[METADATA_REFUND_NO] === refundNo) return refund;
        if (++seen >= REFUND_SCAN_MAX) break;
      }
      return undefined;
    });
  }

  private mismatch(event: Stripe.Event): string | undefined {
    if (this.livemode !== undefined && typeof event.livemode === 'boolean' && event.livemode !== this.livemode) {
      return `event livemode is ${event.livemode} but the secret key is a ${this.livemode ? 'live' : 'test'} key`;
    }
    if (typeof event.account === 'string' && event.account) {
      return `event from connected account ${event.account}, not this account`;
    }
    return undefined;
  }
}

function refundResult(refund: Stripe.Refund): RefundResult {
  const state = refundState(refund.status);
  if (!state) throw rejected(`unknown refund status ${String(refund.status)}`, 'UNKNOWN_STATUS');
  return { state, providerRefundId: refund.id, raw: redact(refund) };
}

function isIntentId(v: string | null | undefined): v is string {
  return typeof v === 'string' && v.startsWith('pi_');
}

function isEvent(v: unknown): v is Stripe.Event {
  const e = v as Partial<Stripe.Event> | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    e.object === 'event' &&
    typeof e.id === 'string' &&
    e.id !== '' &&
    typeof e.type === 'string' &&
    typeof e.data === 'object' &&
    e.data !== null
  );
}

/** A copy for audit: own enumerable fields only (drops stripe-node's `lastResponse`) and no client secret. */
function redact<T extends object>(obj: T): Record<string, unknown> {
  const { client_secret: _secret, ...rest } = obj as Record<string, unknown>;
  return rest;
}

function truncate(s: string, max: number): string {
  const chars = Array.from(s);
  return chars.length > max ? chars.slice(0, max).join('') : s;
}

function rejected(message: string, code: string, httpStatus?: number): ProviderRejectedError {
  return new ProviderRejectedError(message, PROVIDER, code, httpStatus);
}
