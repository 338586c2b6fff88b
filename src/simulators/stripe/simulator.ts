/**
 * Stripe simulator: Stripe's side of the v1 REST API and its webhooks, close enough to the wire for stripe-node,
 * for development and tests. Mounted by the app at `/simulator/stripe`; adapters reach it only through
 * `STRIPE_API_BASE=<publicBaseUrl>/simulator/stripe` (requests land on `…/simulator/stripe/v1/…`).
 *
 * What it simulates
 * - Accounts: one per secret key (`registerAccount`), each with one webhook endpoint (URL, `whsec_` secret,
 *   subscribed event types). `Authorization: Bearer sk_…` (or Basic with the key as user name); a missing or
 *   unknown key is 401 with Stripe's `invalid_request_error` body ("Invalid API Key provided: sk_test_****abcd").
 * - Requests: form-encoded bodies and query strings with bracketed nested keys (`metadata[paymentNo]=…`,
 *   `expand[0]=latest_charge`, `created[gte]=…`); unknown parameters are refused (`parameter_unknown`), as Stripe
 *   does. Answers are pretty-printed JSON with `Request-Id` and `Stripe-Version` headers; errors are
 *   `{ error: { type, code, message, param } }` with Stripe's HTTP statuses (400, 401, 402, 404).
 * - Idempotency (`Idempotency-Key` on POST): the same key with the same endpoint and parameters replays the first
 *   answer (`Idempotent-Replayed: true`); another endpoint or other parameters is 400 `idempotency_error`. Keys
 *   live 24 hours; results of requests refused by validation are not saved (docs.stripe.com/api/idempotent_requests).
 * - PaymentIntents (card only, automatic capture): create (amount limits of the main currencies, `amount_too_small`
 *   / `amount_too_large`), retrieve (`expand[]=latest_charge`), cancel (`payment_intent_unexpected_state` for
 *   succeeded or canceled intents, with the intent attached to the error), search
 *   (`metadata['k']:'v'`, `status:'…'`, `currency:'…'`, `amount` comparisons, joined by `AND`).
 * - The customer: `GET /pay?client_secret=…` card page with Pay / Decline buttons, `POST /confirm
 *   { payment_intent | client_secret, outcome: SUCCESS | FAIL | succeeded | failed }`. Success creates a charge
 *   (`ch_…`, a balance transaction) and the intent reads `succeeded`; a decline creates a failed charge, sets
 *   `last_payment_error` (card_declined) and leaves the intent `requires_payment_method`, payable again.
 * - Refunds: by `payment_intent` or `charge`, partial or full (default: what remains), `charge_already_refunded`,
 *   `amount_too_large`; outcome scripted by `setRefundBehaviour` (succeeded / pending / failed, optional delay);
 *   retrieve, list (`payment_intent`, `charge`, cursor pagination).
 * - Balance transactions (`GET /v1/balance_transactions?created[gte]=…&created[lt]=…`): one `charge` per
 *   successful charge, one `refund` (negative) per refund, one `refund_failure` per failed refund; fees from the
 *   `fees` option (default none), `available_on` two days later at 00:00 UTC. This list is the day's "bill" for
 *   reconciliation: `injectBillDiscrepancy` / `corruptBill` (or `POST /bill-faults`) make it disagree with what was
 *   processed, or lose its `amount`s (`bill-view.ts`); the objects themselves stay true.
 * - Events (`evt_…`, also `GET /v1/events/:id`): `payment_intent.created|succeeded|payment_failed|canceled`,
 *   `charge.succeeded|failed|refunded`, `refund.created|updated|failed`, each a snapshot of its object. Delivered
 *   to the endpoint when subscribed: POSTed with `Stripe-Signature: t=…,v1=…` (HMAC-SHA256 of `t.body` with each
 *   active secret; two `v1` while a secret is being rolled), retried until a 2xx on an exponential schedule of
 *   about three days (`STRIPE_RETRY_SCHEDULE_MS` ÷ timeScale), each retry freshly signed with the same event id.
 *
 * What it does not simulate
 * - Stripe.js, confirmation from the server (`confirm=true`), 3-D Secure (`requires_action`), manual capture,
 *   customers, payment methods as objects, Checkout Sessions, disputes, payouts, Connect, the Search API's
 *   indexing lag (results are immediate) and rate limits.
 * - Deliveries from several Stripe servers, out-of-order retries beyond what concurrent delivery produces, and the
 *   sandbox's shorter retry schedule (three attempts over a few hours).
 *
 * The router parses bodies itself with `express.raw`; mount it before any app-wide body parser.
 */
import express, { type Request, type Response, type Router } from 'express';
import type { StripeConfig } from '../../payments/providers/stripe/config';
import type { BillCorruption, BillDiscrepancy } from '../shared/bill-faults';
import { mountControlRoutes, RefundControl } from '../shared/control';
import { NotificationDispatcher, silentLogger, type DeliveryAttempt, type SimulatorLogger } from '../shared/delivery';
import { formatMinor } from '../shared/currency';
import { renderPhonePage } from '../shared/html';
import { canonicalJson, isObject as isRecord, parseJson, str } from '../shared/request';
import { StripeBillView } from './bill-view';
import { randomBase62, stripeId, type StripeCredentials } from './credentials';
import { FormError, parseForm, type FormObject, type FormValue } from './form';
import { stripeSignatureHeader, type SignatureOverrides } from './signature';
import { StripeStore, type Account, type AccountRegistration } from './store';
import type {
  BalanceTransactionType,
  Metadata,
  WireBalanceTransaction,
  WireCharge,
  WireError,
  WireEvent,
  WirePaymentIntent,
  WireRefund,
} from './types';

export const STRIPE_SIMULATOR_MOUNT = '/simulator/stripe';

/**
 * Delays before each webhook retry. Stripe documents only the envelope: "In live mode, Stripe attempts to deliver
 * a given event to your webhook endpoint for up to 3 days with an exponential back off" (docs.stripe.com/webhooks,
 * "Automatic retries"); the individual intervals are not published. These (1 m, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h,
 * 14 h, 14 h, 14 h: eleven attempts over about 70 hours) follow that shape.
 */
export const STRIPE_RETRY_SCHEDULE_MS: readonly number[] = [60, 300, 1800, 7200, 18000, 36000, 36000, 50400, 50400, 50400].map(
  (s) => s * 1000,
);

/** The API version events are rendered for when no request named one (stripe-node 20.4.1 pins this one). */
export const STRIPE_SIMULATOR_DEFAULT_API_VERSION = '2026-02-25.clover';

/** Stripe's minimum charge amounts for the main currencies (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts). */
const MINIMUM_AMOUNT: Readonly<Record<string, number>> = {
  usd: 50, eur: 50, gbp: 30, aud: 50, cad: 50, chf: 50, nzd: 50, sgd: 50, jpy: 50, hkd: 400, dkk: 250, nok: 300, sek: 300, mxn: 1000,
};
/** Eight digits: $999,999.99. */
const MAXIMUM_AMOUNT = 99_999_999;
const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
const EXPANDABLE = new Set(['latest_charge', 'payment_intent', 'charge', 'balance_transaction', 'failure_balance_transaction', 'source']);
const CANCELLATION_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'];
const REFUND_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer'];
const CANCELABLE: ReadonlySet<string> = new Set([
  'requires_payment_method',
  'requires_capture',
  'requires_confirmation',
  'requires_action',
  'processing',
]);
const MAX_EVENT_LOG = 10_000;

export interface StripeSimulatorOptions {
  /** External base URL of the app serving the router, e.g. `http://127.0.0.1:4000`. */
  publicBaseUrl: string;
  /** Where the app mounts `router`. Default `/simulator/stripe`. */
  mountPath?: string;
  /** Webhook retries run this many times faster. Default 1. */
  timeScale?: number;
  logger?: SimulatorLogger;
  /** How long an endpoint may take to answer a webhook. Default 10000 ms (Stripe does not publish its limit). */
  replyTimeoutMs?: number;
  /** Replaces `STRIPE_RETRY_SCHEDULE_MS`. */
  retryScheduleMs?: readonly number[];
  /** Processing fees on charges' balance transactions: `percent` of the amount (rounded) plus `fixed`. Default none. */
  fees?: { percent: number; fixed: number };
  /** The clock for objects' `created` (epoch ms). Default `Date.now`. Webhook signatures always use the real clock. */
  now?: () => number;
}

export type RefundBehaviour = 'succeeded' | 'pending' | 'failed';
export type ConfirmOutcome = 'SUCCESS' | 'FAIL' | 'succeeded' | 'failed';

export interface ConfirmInput {
  payment_intent?: string;
  client_secret?: string;
  outcome: ConfirmOutcome;
  /** Default true; false records the outcome and its events without delivering them (query-fallback tests). */
  notify?: boolean;
}

export type ConfirmResult =
  | { ok: true; payment_intent: string; status: string; latest_charge: string | null }
  | { ok: false; status: 400 | 404 | 409; code: string; message: string };

export interface SignedEvent {
  id: string;
  event: WireEvent;
  /** The exact bytes to send (and that were signed). */
  rawBody: string;
  /** `content-type` and `stripe-signature`, lower-case as Node presents them. */
  headers: Record<string, string>;
}

export interface BuildEventInput {
  type: string;
  /** The event's `data.object`: a PaymentIntent, Charge or Refund as Stripe describes it. */
  object: Record<string, unknown>;
  previousAttributes?: Record<string, unknown>;
  id?: string;
  /** Unix seconds; default now. */
  created?: number;
  livemode?: boolean;
  /** Extra top-level fields (e.g. `account` for a Connect event). */
  extra?: Record<string, unknown>;
}

export interface StripeSimulator {
  /** Mount at `mountPath` (default `/simulator/stripe`). */
  readonly router: Router;
  /** `${publicBaseUrl}${mountPath}`: the adapter's `apiBase`. */
  readonly baseUrl: string;
  readonly store: StripeStore;
  /** Every event created so far (all accounts), oldest first. */
  readonly events: readonly WireEvent[];
  /** Every webhook delivery attempt, oldest first. */
  readonly notifications: readonly DeliveryAttempt[];
  registerAccount(account: AccountRegistration): void;
  /**
   * A `StripeConfig` for `StripeProvider` pointing at this simulator. Registers the account when it is new or when
   * `credentials` name a `webhookUrl`.
   */
  adapterConfig(
    credentials: Pick<StripeCredentials, 'secretKey' | 'webhookSecret'> & Partial<AccountRegistration>,
    overrides?: Partial<StripeConfig>,
  ): StripeConfig;
  /** The card page for a client secret. */
  payUrl(clientSecret: string): string;
  /** What `POST /confirm` does. */
  confirm(input: ConfirmInput): ConfirmResult;
  /** How later refunds end; `delayMs` > 0 answers `pending` first. 'pending' without delay stays pending. */
  setRefundBehaviour(behaviour: RefundBehaviour, delayMs?: number): void;
  /** Ends a pending refund now (and sends its events). */
  settleRefund(refundId: string, status: 'succeeded' | 'failed' | 'canceled'): boolean;
  /** Starts rolling the endpoint's secret: both sign until `expireOldWebhookSecrets`. Returns the new secret. */
  rollWebhookSecret(secretKey: string, newSecret?: string): string;
  expireOldWebhookSecrets(secretKey: string): void;
  /** Builds and signs an event for a registered account without recording or delivering it (tests). */
  buildEvent(secretKey: string, input: BuildEventInput, overrides?: SignatureOverrides): SignedEvent;
  /** Delivers a recorded event once more (freshly signed, same id), with retries. */
  redeliver(eventId: string): boolean;
  /** Makes later balance-transaction lists disagree with what was processed, until `clearBillFaults`. */
  injectBillDiscrepancy(d: BillDiscrepancy): void;
  /** `columns`: listed balance transactions lose their `amount`. The other corruptions do not apply to a JSON API. */
  corruptBill(mode: BillCorruption | null): void;
  clearBillFaults(): void;
  /** Cancels pending deliveries and refund timers. */
  close(): void;
}

interface ApiAnswer {
  status: number;
  body: unknown;
}

/** Thrown by parameter checks: the answer to send. */
class ApiFailure extends Error {
  constructor(readonly answer: ApiAnswer) {
    super((answer.body as { error?: { message?: string } })?.error?.message ?? 'api failure');
  }
}

interface Ctx {
  req: Request;
  account: Account;
  params: FormObject;
  request: { id: string; idempotency_key: string | null };
}

type Handler = (ctx: Ctx) => ApiAnswer;

function errorAnswer(status: number, error: WireError): ApiAnswer {
  const doc = error.code ? { doc_url: `https://stripe.com/docs/error-codes/${error.code.replace(/_/g, '-')}` } : {};
  return { status, body: { error: { ...error, ...doc } } };
}

function invalid(message: string, extra: Partial<WireError> = {}, status = 400): ApiFailure {
  return new ApiFailure(errorAnswer(status, { type: 'invalid_request_error', message, ...extra }));
}

function missing(kind: string, id: string, param = 'id'): ApiFailure {
  return invalid(`No such ${kind}: '${id}'`, { code: 'resource_missing', param }, 404);
}

export function createStripeSimulator(options: StripeSimulatorOptions): StripeSimulator {
  const mountPath = (options.mountPath ?? STRIPE_SIMULATOR_MOUNT).replace(/\/+$/, '');
  const publicBaseUrl = options.publicBaseUrl.replace(/\/+$/, '');
  const baseUrl = `${publicBaseUrl}${mountPath}`;
  const logger = options.logger ?? silentLogger;
  const nowMs = options.now ?? Date.now;
  const unix = () => Math.floor(nowMs() / 1000);
  const fees = options.fees;

  const store = new StripeStore();
  const billView = new StripeBillView((account, id) => store.lookup(account, id), unix);
  const dispatcher = new NotificationDispatcher({
    retryScheduleMs: options.retryScheduleMs ?? STRIPE_RETRY_SCHEDULE_MS,
    timeScale: options.timeScale,
    replyTimeoutMs: options.replyTimeoutMs ?? 10_000,
    logger,
  });
  const allEvents: WireEvent[] = [];
  const rawEvents = new Map<string, string>();
  const refunds = new RefundControl<RefundBehaviour>(['succeeded', 'pending', 'failed']);

  // ---- events and webhooks ---------------------------------------------------------------------------------------

  const subscribed = (account: Account, type: string) => account.enabledEvents.has('*') || account.enabledEvents.has(type);

  function deliver(account: Account, evt: WireEvent, rawBody: string): void {
    const url = account.webhookUrl;
    if (!url) return;
    dispatcher.dispatch({
      notificationId: evt.id,
      label: evt.type,
      url,
      build: () => ({
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'stripe-signature': stripeSignatureHeader(rawBody, account.webhookSecrets),
        },
        body: rawBody,
      }),
    });
  }

  function emit(
    account: Account,
    type: string,
    object: object,
    opts: { previous?: Record<string, unknown>; request?: Ctx['request']; deliver?: boolean } = {},
  ): WireEvent {
    const toEndpoint = subscribed(account, type) && !!account.webhookUrl;
    const evt: WireEvent = {
      id: stripeId('evt'),
      object: 'event',
      api_version: account.apiVersion ?? STRIPE_SIMULATOR_DEFAULT_API_VERSION,
      created: unix(),
      data: { object: structuredClone(object) as Record<string, unknown>, ...(opts.previous ? { previous_attributes: opts.previous } : {}) },
      livemode: account.livemode,
      pending_webhooks: toEndpoint ? 1 : 0,
      request: opts.request ?? { id: null, idempotency_key: null },
      type,
    };
    store.addEvent(account, evt);
    allEvents.push(evt);
    if (allEvents.length > MAX_EVENT_LOG) {
      for (const dropped of allEvents.splice(0, allEvents.length - MAX_EVENT_LOG)) rawEvents.delete(dropped.id);
    }
    // Stripe sends events pretty-printed; receivers must verify these exact bytes.
    const rawBody = JSON.stringify(evt, null, 2);
    rawEvents.set(evt.id, rawBody);
    if (toEndpoint && opts.deliver !== false) deliver(account, evt, rawBody);
    return evt;
  }

  // ---- objects ---------------------------------------------------------------------------------------------------

  function addBalanceTransaction(
    account: Account,
    type: BalanceTransactionType,
    amount: number,
    currency: string,
    source: string,
    description: string | null,
  ): WireBalanceTransaction {
    const created = unix();
    const fee = type === 'charge' && fees ? Math.round((amount * fees.percent) / 100) + fees.fixed : 0;
    const txn: WireBalanceTransaction = {
      id: stripeId('txn'),
      object: 'balance_transaction',
      amount,
      // Funds become available at 00:00 UTC two days later (a standard two-day payout schedule).
      available_on: Math.ceil((created + 2 * 86400) / 86400) * 86400,
      created,
      currency,
      description,
      exchange_rate: null,
      fee,
      fee_details: fee ? [{ amount: fee, application: null, currency, description: 'Stripe processing fees', type: 'stripe_fee' }] : [],
      net: amount - fee,
      reporting_category: type,
      source,
      status: 'pending',
      type,
    };
    store.addBalanceTransaction(account, txn);
    return txn;
  }

  function newCharge(account: Account, pi: WirePaymentIntent, succeeded: boolean): WireCharge {
    const now = new Date(nowMs());
    const ch: WireCharge = {
      id: stripeId('ch'),
      object: 'charge',
      amount: pi.amount,
      amount_captured: succeeded ? pi.amount : 0,
      amount_refunded: 0,
      balance_transaction: null,
      billing_details: { address: null, email: null, name: null, phone: null },
      captured: succeeded,
      created: unix(),
      currency: pi.currency,
      description: pi.description,
      failure_code: succeeded ? null : 'card_declined',
      failure_message: succeeded ? null : 'Your card was declined.',
      livemode: account.livemode,
      // Charges created by a PaymentIntent carry its metadata.
      metadata: { ...pi.metadata },
      outcome: succeeded
        ? { network_status: 'approved_by_network', reason: null, risk_level: 'normal', seller_message: 'Payment complete.', type: 'authorized' }
        : {
            network_status: 'declined_by_network',
            reason: 'generic_decline',
            risk_level: 'normal',
            seller_message: 'The bank did not return any further details with this decline.',
            type: 'issuer_declined',
          },
      paid: succeeded,
      payment_intent: pi.id,
      payment_method: stripeId('pm'),
      payment_method_details: {
        type: 'card',
        card: {
          brand: 'visa',
          country: 'US',
          exp_month: 12,
          exp_year: now.getUTCFullYear() + 3,
          funding: 'credit',
          last4: succeeded ? '4242' : '0002',
        },
      },
      refunded: false,
      status: succeeded ? 'succeeded' : 'failed',
    };
    if (succeeded) ch.balance_transaction = addBalanceTransaction(account, 'charge', ch.amount, ch.currency, ch.id, ch.description).id;
    store.addCharge(account, ch);
    return ch;
  }

  /** A copy of `obj` with the `expand` paths replaced by copies of the objects they name. */
  function expand<T>(account: Account, obj: T, paths: readonly string[]): T {
    const out = structuredClone(obj);
    const apply = (target: unknown, segs: string[]): void => {
      if (!target || typeof target !== 'object' || segs.length === 0) return;
      const t = target as Record<string, unknown>;
      const [head, ...rest] = segs;
      if (head === 'data' && Array.isArray(t.data)) {
        for (const item of t.data) apply(item, rest);
        return;
      }
      if (!EXPANDABLE.has(head) || !(head in t)) throw invalid(`This property cannot be expanded (${head}).`, { param: 'expand' });
      const v = t[head];
      if (typeof v === 'string') {
        const found = store.lookup(account, v) ?? billView.phantom(v);
        if (found) t[head] = structuredClone(found);
      }
      apply(t[head], rest);
    };
    for (const p of paths) apply(out, p.split('.'));
    return out;
  }

  // ---- the customer's side ---------------------------------------------------------------------------------------

  function confirm(input: ConfirmInput): ConfirmResult {
    const found = store.findIntent(input);
    const ref = input.payment_intent ?? input.client_secret ?? '';
    if (!found) return { ok: false, status: 404, code: 'resource_missing', message: `No such payment_intent: '${ref}'` };
    const { account, pi } = found;
    const outcome = String(input.outcome);
    const success = outcome === 'SUCCESS' || outcome === 'succeeded';
    if (!success && outcome !== 'FAIL' && outcome !== 'failed') {
      return { ok: false, status: 400, code: 'parameter_invalid', message: 'outcome must be SUCCESS | FAIL | succeeded | failed' };
    }
    if (pi.status === 'succeeded' || pi.status === 'canceled') {
      return {
        ok: false,
        status: 409,
        code: 'payment_intent_unexpected_state',
        message: `This PaymentIntent's status is ${pi.status} and it can no longer be confirmed.`,
      };
    }
    const deliverIt = input.notify !== false;
    const ch = newCharge(account, pi, success);
    pi.latest_charge = ch.id;
    pi.payment_method = ch.payment_method;
    if (success) {
      pi.status = 'succeeded';
      pi.amount_received = pi.amount;
      pi.last_payment_error = null;
      logger.info({ payment_intent: pi.id, charge: ch.id }, 'stripe simulator: payment succeeded');
      emit(account, 'charge.succeeded', ch, { deliver: deliverIt });
      emit(account, 'payment_intent.succeeded', pi, { deliver: deliverIt });
    } else {
      pi.status = 'requires_payment_method';
      pi.payment_method = null;
      pi.last_payment_error = {
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'generic_decline',
        message: 'Your card was declined.',
        charge: ch.id,
        doc_url: 'https://stripe.com/docs/error-codes/card-declined',
      };
      logger.info({ payment_intent: pi.id, charge: ch.id }, 'stripe simulator: payment declined');
      emit(account, 'charge.failed', ch, { deliver: deliverIt });
      emit(account, 'payment_intent.payment_failed', pi, { deliver: deliverIt });
    }
    return { ok: true, payment_intent: pi.id, status: pi.status, latest_charge: ch.id };
  }

  function payPage(found: { account: Account; pi: WirePaymentIntent } | undefined, clientSecret: string): { status: number; html: string } {
    const common = { brand: 'Stripe (simulator)', brandColor: '#635bff', actionUrl: 'confirm', payload: { client_secret: clientSecret } };
    if (!found) {
      return {
        status: 404,
        html: renderPhonePage({ ...common, merchant: '—', description: '', amountText: '', buttons: [], notice: 'Unknown or invalid client secret.' }),
      };
    }
    const { account, pi } = found;
    const notice =
      pi.status === 'succeeded'
        ? 'This payment has succeeded.'
        : pi.status === 'canceled'
          ? 'This payment was canceled and can no longer be paid.'
          : undefined;
    const details: Array<[string, string]> = [['PaymentIntent', pi.id]];
    if (pi.last_payment_error) details.push(['Last attempt', pi.last_payment_error.message]);
    return {
      status: 200,
      html: renderPhonePage({
        ...common,
        merchant: account.name,
        description: pi.description ?? '',
        amountText: formatMinor(pi.amount, pi.currency),
        details,
        buttons: [
          { label: 'Pay with test card •••• 4242', fields: { outcome: 'succeeded' }, primary: true },
          { label: 'Decline (card •••• 0002)', fields: { outcome: 'failed' } },
        ],
        notice,
      }),
    };
  }

  // ---- refunds ---------------------------------------------------------------------------------------------------

  function settle(account: Account, refund: WireRefund, status: 'succeeded' | 'failed' | 'canceled'): boolean {
    if (refund.status !== 'pending') return false;
    refund.status = status;
    if (status !== 'succeeded') {
      refund.failure_reason = status === 'failed' ? 'expired_or_canceled_card' : 'unknown';
      const ch = account.charges.get(refund.charge as string);
      if (ch) {
        ch.amount_refunded -= refund.amount;
        ch.refunded = false;
      }
      refund.failure_balance_transaction = addBalanceTransaction(
        account,
        'refund_failure',
        refund.amount,
        refund.currency,
        refund.id,
        'REFUND FOR FAILED REFUND',
      ).id;
    }
    logger.info({ refund: refund.id, status }, 'stripe simulator: refund settled');
    emit(account, 'refund.updated', refund, { previous: { status: 'pending' } });
    if (status === 'failed') emit(account, 'refund.failed', refund);
    return true;
  }

  function scheduleSettle(account: Account, refund: WireRefund, status: 'succeeded' | 'failed', delayMs: number): void {
    refunds.later(() => settle(account, refund, status), delayMs);
  }

  // ---- API handlers ----------------------------------------------------------------------------------------------

  const createIntent: Handler = ({ account, params, request }) => {
    allowOnly(params, [
      'amount',
      'currency',
      'description',
      'metadata',
      'payment_method_types',
      'automatic_payment_methods',
      'capture_method',
      'expand',
      'receipt_email',
      'statement_descriptor',
      'statement_descriptor_suffix',
    ]);
    const amount = intParam(params, 'amount', true);
    const currency = currencyParam(params);
    if (amount < 1) throw invalid('This value must be greater than or equal to 1.', { code: 'parameter_invalid_integer', param: 'amount' });
    const min = MINIMUM_AMOUNT[currency];
    if (min && amount < min) {
      throw invalid(`Amount must be at least ${formatMinor(min, currency)} ${currency}`, { code: 'amount_too_small', param: 'amount' });
    }
    if (amount > MAXIMUM_AMOUNT) {
      throw invalid(`Amount must be no more than ${formatMinor(MAXIMUM_AMOUNT, currency)}`, { code: 'amount_too_large', param: 'amount' });
    }
    const types = stringArrayParam(params, 'payment_method_types');
    const apm = params.automatic_payment_methods;
    if (apm !== undefined && !isObject(apm)) throw invalid('Invalid hash', { code: 'parameter_invalid', param: 'automatic_payment_methods' });
    const apmEnabled = isObject(apm) ? apm.enabled === 'true' : undefined;
    if (types && apmEnabled) {
      throw invalid('You may only specify one of these parameters: automatic_payment_methods, payment_method_types.', {
        code: 'parameter_unknown',
        param: 'automatic_payment_methods',
      });
    }
    if (types && types.some((t) => t !== 'card')) {
      throw invalid(`The payment method type "${types.find((t) => t !== 'card')}" is not supported by the simulator (card only).`, {
        code: 'payment_method_type_unsupported',
        param: 'payment_method_types',
      });
    }
    const capture = optionalString(params, 'capture_method') ?? 'automatic_async';
    if (capture !== 'automatic' && capture !== 'automatic_async') {
      throw invalid(`capture_method ${capture} is not supported by the simulator (automatic capture only).`, {
        code: 'parameter_invalid',
        param: 'capture_method',
      });
    }
    const id = stripeId('pi');
    const pi: WirePaymentIntent = {
      id,
      object: 'payment_intent',
      amount,
      amount_capturable: 0,
      amount_received: 0,
      automatic_payment_methods: types ? null : { enabled: true, allow_redirects: 'always' },
      canceled_at: null,
      cancellation_reason: null,
      capture_method: capture,
      client_secret: `${id}_secret_${randomBase62(25)}`,
      confirmation_method: 'automatic',
      created: unix(),
      currency,
      customer: null,
      description: optionalString(params, 'description') ?? null,
      last_payment_error: null,
      latest_charge: null,
      livemode: account.livemode,
      metadata: metadataParam(params),
      next_action: null,
      payment_method: null,
      payment_method_types: types ?? ['card'],
      receipt_email: optionalString(params, 'receipt_email') ?? null,
      statement_descriptor: optionalString(params, 'statement_descriptor') ?? null,
      statement_descriptor_suffix: optionalString(params, 'statement_descriptor_suffix') ?? null,
      status: 'requires_payment_method',
    };
    store.addIntent(account, pi);
    // The client secret lets anyone pay the intent: it is not logged (the checkout page links to `payUrl`).
    logger.info({ payment_intent: id, amount, currency }, 'stripe simulator: PaymentIntent created');
    emit(account, 'payment_intent.created', pi, { request });
    return { status: 200, body: expand(account, pi, expandParam(params)) };
  };

  const intentOf = (account: Account, id: string, param = 'intent'): WirePaymentIntent => {
    const pi = account.intents.get(id);
    if (!pi) throw missing('payment_intent', id, param);
    return pi;
  };

  const retrieveIntent: Handler = ({ req, account, params }) => {
    allowOnly(params, ['expand', 'client_secret']);
    return { status: 200, body: expand(account, intentOf(account, String(req.params.id)), expandParam(params)) };
  };

  const cancelIntent: Handler = ({ req, account, params, request }) => {
    allowOnly(params, ['cancellation_reason', 'expand']);
    const reason = optionalString(params, 'cancellation_reason');
    if (reason !== undefined && !CANCELLATION_REASONS.includes(reason)) {
      throw invalid(`Invalid cancellation_reason: must be one of ${CANCELLATION_REASONS.join(', ')}`, {
        code: 'parameter_invalid',
        param: 'cancellation_reason',
      });
    }
    const pi = intentOf(account, String(req.params.id));
    if (!CANCELABLE.has(pi.status)) {
      throw new ApiFailure(
        errorAnswer(400, {
          type: 'invalid_request_error',
          code: 'payment_intent_unexpected_state',
          message:
            `You cannot cancel this PaymentIntent because it has a status of ${pi.status}. Only a PaymentIntent with one of ` +
            `the following statuses may be canceled: ${[...CANCELABLE].join(', ')}.`,
          payment_intent: structuredClone(pi),
        }),
      );
    }
    const previous = { status: pi.status, canceled_at: null, cancellation_reason: null };
    pi.status = 'canceled';
    pi.canceled_at = unix();
    pi.cancellation_reason = reason ?? null;
    logger.info({ payment_intent: pi.id }, 'stripe simulator: PaymentIntent canceled');
    emit(account, 'payment_intent.canceled', pi, { request, previous });
    return { status: 200, body: expand(account, pi, expandParam(params)) };
  };

  const searchIntents: Handler = ({ account, params }) => {
    allowOnly(params, ['query', 'limit', 'page', 'expand']);
    const query = optionalString(params, 'query');
    if (!query) throw invalid('Missing required param: query.', { code: 'parameter_missing', param: 'query' });
    const match = parseSearchQuery(query);
    const limit = limitParam(params);
    const offset = params.page === undefined ? 0 : Number(Buffer.from(String(params.page), 'base64url').toString('utf8'));
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalid('Invalid page token.', { code: 'parameter_invalid', param: 'page' });
    const all = newestFirst([...account.intents.values()]).filter(match);
    const data = all.slice(offset, offset + limit);
    const hasMore = all.length > offset + limit;
    const body = {
      object: 'search_result',
      data,
      has_more: hasMore,
      next_page: hasMore ? Buffer.from(String(offset + limit), 'utf8').toString('base64url') : null,
      url: '/v1/payment_intents/search',
    };
    return { status: 200, body: expand(account, body, expandParam(params)) };
  };

  const createRefund: Handler = ({ account, params, request }) => {
    allowOnly(params, ['payment_intent', 'charge', 'amount', 'reason', 'metadata', 'expand', 'instructions_email']);
    const piId = optionalString(params, 'payment_intent');
    const chargeId = optionalString(params, 'charge');
    if (!piId && !chargeId) {
      throw invalid('One of the following params should be provided for this request: payment_intent or charge.', {
        code: 'parameter_missing',
      });
    }
    if (piId && chargeId) {
      throw invalid('You may only specify one of these parameters: charge, payment_intent.', { code: 'parameter_invalid', param: 'charge' });
    }
    let ch: WireCharge | undefined;
    if (piId) {
      const pi = intentOf(account, piId, 'payment_intent');
      if (pi.status !== 'succeeded') {
        throw invalid(`This PaymentIntent (${pi.id}) does not have a successful charge to refund.`, {
          code: 'payment_intent_unexpected_state',
          param: 'payment_intent',
        });
      }
      ch = account.charges.get(pi.latest_charge as string);
    } else {
      ch = account.charges.get(chargeId!);
      if (!ch) throw missing('charge', chargeId!, 'charge');
      if (ch.status !== 'succeeded') {
        throw invalid(`Charge ${ch.id} has not succeeded and cannot be refunded.`, { code: 'charge_not_refundable', param: 'charge' });
      }
    }
    if (!ch) throw new Error('succeeded PaymentIntent without its charge');
    const remaining = ch.amount - ch.amount_refunded;
    if (remaining <= 0) throw invalid(`Charge ${ch.id} has already been refunded.`, { code: 'charge_already_refunded' });
    const amount = params.amount === undefined ? remaining : intParam(params, 'amount', true);
    if (amount < 1) throw invalid('This value must be greater than or equal to 1.', { code: 'parameter_invalid_integer', param: 'amount' });
    if (amount > remaining) {
      throw invalid(
        `Refund amount (${formatMinor(amount, ch.currency)}) is greater than unrefunded amount on charge (${formatMinor(remaining, ch.currency)})`,
        { code: 'amount_too_large', param: 'amount' },
      );
    }
    const reason = optionalString(params, 'reason');
    if (reason !== undefined && !REFUND_REASONS.includes(reason)) {
      throw invalid(`Invalid reason: must be one of ${REFUND_REASONS.join(', ')}`, { code: 'parameter_invalid', param: 'reason' });
    }
    const metadata = metadataParam(params);

    const { behaviour: refundBehaviour, delayMs: refundDelayMs } = refunds;
    const immediate = refundBehaviour === 'succeeded' && refundDelayMs === 0;
    const refund: WireRefund = {
      id: stripeId('re'),
      object: 'refund',
      amount,
      balance_transaction: null,
      charge: ch.id,
      created: unix(),
      currency: ch.currency,
      metadata,
      payment_intent: ch.payment_intent as string,
      reason: (reason as WireRefund['reason']) ?? null,
      receipt_number: null,
      status: immediate ? 'succeeded' : 'pending',
    };
    refund.balance_transaction = addBalanceTransaction(account, 'refund', -amount, ch.currency, refund.id, 'REFUND FOR CHARGE').id;
    const previous = { amount_refunded: ch.amount_refunded, refunded: ch.refunded };
    ch.amount_refunded += amount;
    ch.refunded = ch.amount_refunded === ch.amount;
    store.addRefund(account, refund);
    logger.info({ refund: refund.id, charge: ch.id, amount, status: refund.status }, 'stripe simulator: refund created');
    emit(account, 'refund.created', refund, { request });
    emit(account, 'charge.refunded', ch, { request, previous });
    if (!immediate && refundBehaviour !== 'pending') {
      const final = refundBehaviour === 'failed' ? 'failed' : 'succeeded';
      if (refundDelayMs > 0) scheduleSettle(account, refund, final, refundDelayMs);
      else settle(account, refund, final);
    } else if (!immediate && refundBehaviour === 'pending' && refundDelayMs > 0) {
      scheduleSettle(account, refund, 'succeeded', refundDelayMs);
    }
    return { status: 200, body: expand(account, refund, expandParam(params)) };
  };

  const retrieveRefund: Handler = ({ req, account, params }) => {
    allowOnly(params, ['expand']);
    const refund = account.refunds.get(String(req.params.id));
    if (!refund) throw missing('refund', String(req.params.id));
    return { status: 200, body: expand(account, refund, expandParam(params)) };
  };

  const listRefunds: Handler = ({ account, params }) => {
    allowOnly(params, ['payment_intent', 'charge', 'limit', 'starting_after', 'ending_before', 'created', 'expand']);
    const piId = optionalString(params, 'payment_intent');
    const chargeId = optionalString(params, 'charge');
    const created = createdFilter(params);
    const items = newestFirst([...account.refunds.values()]).filter(
      (r) => (!piId || r.payment_intent === piId) && (!chargeId || r.charge === chargeId) && created(r.created),
    );
    return { status: 200, body: expand(account, paginate(items, params, '/v1/refunds'), expandParam(params)) };
  };

  const retrieveCharge: Handler = ({ req, account, params }) => {
    allowOnly(params, ['expand']);
    const ch = account.charges.get(String(req.params.id));
    if (!ch) throw missing('charge', String(req.params.id));
    return { status: 200, body: expand(account, ch, expandParam(params)) };
  };

  const refreshStatus = (txn: WireBalanceTransaction): WireBalanceTransaction => {
    txn.status = txn.available_on <= unix() ? 'available' : 'pending';
    return txn;
  };

  const listBalanceTransactions: Handler = ({ account, params }) => {
    allowOnly(params, ['created', 'limit', 'starting_after', 'ending_before', 'type', 'currency', 'source', 'expand']);
    const created = createdFilter(params);
    const type = optionalString(params, 'type');
    const currency = optionalString(params, 'currency')?.toLowerCase();
    const source = optionalString(params, 'source');
    const items = newestFirst(billView.transactions(account, [...account.balanceTransactions.values()]))
      .filter((t) => created(t.created) && (!type || t.type === type) && (!currency || t.currency === currency) && (!source || t.source === source))
      .map(refreshStatus);
    return { status: 200, body: billView.finish(expand(account, paginate(items, params, '/v1/balance_transactions'), expandParam(params))) };
  };

  const retrieveBalanceTransaction: Handler = ({ req, account, params }) => {
    allowOnly(params, ['expand']);
    const txn = account.balanceTransactions.get(String(req.params.id));
    if (!txn) throw missing('balance_transaction', String(req.params.id));
    return { status: 200, body: expand(account, refreshStatus(txn), expandParam(params)) };
  };

  const retrieveEvent: Handler = ({ req, account, params }) => {
    allowOnly(params, ['expand']);
    const evt = account.events.get(String(req.params.id));
    if (!evt) throw missing('event', String(req.params.id));
    return { status: 200, body: structuredClone(evt) };
  };

  // ---- request plumbing ------------------------------------------------------------------------------------------

  function authenticate(req: Request): Account {
    const header = req.get('authorization') ?? '';
    let key: string | undefined;
    const bearer = /^Bearer\s+(\S+)$/i.exec(header);
    const basic = /^Basic\s+(\S+)$/i.exec(header);
    if (bearer) key = bearer[1];
    else if (basic) key = Buffer.from(basic[1], 'base64').toString('utf8').split(':')[0];
    if (!key) {
      throw invalid(
        "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        {},
        401,
      );
    }
    const account = store.account(key);
    if (!account) throw invalid(`Invalid API Key provided: ${maskKey(key)}`, {}, 401);
    return account;
  }

  const api =
    (handler: Handler) =>
    (req: Request, res: Response): void => {
      const requestId = stripeId('req', 14);
      const idempotencyKey = req.method === 'POST' ? (req.get('idempotency-key') ?? null) : null;
      const headers: Record<string, string> = { 'Request-Id': requestId };
      let answer: ApiAnswer | undefined;
      try {
        if (req.body !== undefined && !Buffer.isBuffer(req.body) && Object.keys(req.body as object).length > 0) {
          throw new Error('the Stripe simulator router must be mounted before any body parser');
        }
        const account = authenticate(req);
        const version = req.get('stripe-version');
        if (version) account.apiVersion = version;
        headers['Stripe-Version'] = account.apiVersion ?? STRIPE_SIMULATOR_DEFAULT_API_VERSION;
        const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
        const q = req.originalUrl.indexOf('?');
        const params = parseForm(req.method === 'GET' || req.method === 'DELETE' ? (q < 0 ? '' : req.originalUrl.slice(q + 1)) : raw);
        if (idempotencyKey !== null) {
          headers['Idempotency-Key'] = idempotencyKey;
          answer = idempotentReplay(account, idempotencyKey, req.path, params, headers);
        }
        if (!answer) {
          try {
            answer = handler({ req, account, params, request: { id: requestId, idempotency_key: idempotencyKey } });
          } catch (err) {
            if (!(err instanceof ApiFailure) && !(err instanceof FormError)) throw err;
            answer = err instanceof ApiFailure ? err.answer : errorAnswer(400, { type: 'invalid_request_error', message: err.message, param: err.param });
          }
          // Stripe saves a result once the endpoint started executing (successes, declines, 5xx); requests refused
          // by validation are not saved and can be retried with the same key.
          if (idempotencyKey !== null && (answer.status < 400 || answer.status === 402 || answer.status >= 500)) {
            account.idempotency.set(idempotencyKey, {
              path: req.path,
              fingerprint: canonicalJson(params),
              status: answer.status,
              body: structuredClone(answer.body),
              requestId,
              createdAt: nowMs(),
            });
          }
        }
      } catch (err) {
        if (err instanceof ApiFailure) answer = err.answer;
        else if (err instanceof FormError) answer = errorAnswer(400, { type: 'invalid_request_error', message: err.message, param: err.param });
        else {
          logger.error({ err }, 'stripe simulator: handler failed');
          answer = errorAnswer(500, { type: 'api_error', message: 'An unknown error occurred. Please try again later.' });
        }
      }
      res.status(answer.status).set(headers);
      res.set('Content-Type', 'application/json').end(Buffer.from(JSON.stringify(answer.body, null, 2), 'utf8'));
    };

  function idempotentReplay(
    account: Account,
    key: string,
    path: string,
    params: FormObject,
    headers: Record<string, string>,
  ): ApiAnswer | undefined {
    if (key.length > 255) {
      throw invalid(`Invalid Idempotency-Key: keys may be up to 255 characters long, got ${key.length}.`, { param: 'idempotency_key' });
    }
    const cutoff = nowMs() - IDEMPOTENCY_TTL_MS;
    for (const [k, r] of account.idempotency) {
      if (r.createdAt >= cutoff) break; // insertion order is creation order
      account.idempotency.delete(k);
    }
    const rec = account.idempotency.get(key);
    if (!rec) return undefined;
    const retryHint = `Try using a key other than '${key}' if you meant to execute a different request.`;
    if (rec.path !== path) {
      return errorAnswer(400, {
        type: 'idempotency_error',
        message: `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${rec.path}' vs '${path}'). ${retryHint}`,
      });
    }
    if (rec.fingerprint !== canonicalJson(params)) {
      return errorAnswer(400, {
        type: 'idempotency_error',
        message: `Keys for idempotent requests can only be used with the same parameters they were first used with. ${retryHint}`,
      });
    }
    headers['Idempotent-Replayed'] = 'true';
    headers['Original-Request'] = rec.requestId;
    return { status: rec.status, body: structuredClone(rec.body) };
  }

  // ---- router ----------------------------------------------------------------------------------------------------

  const router = express.Router();
  router.use(express.raw({ type: '*/*', limit: '1mb' }));

  router.post('/v1/payment_intents', api(createIntent));
  router.get('/v1/payment_intents/search', api(searchIntents));
  router.get('/v1/payment_intents/:id', api(retrieveIntent));
  router.post('/v1/payment_intents/:id/cancel', api(cancelIntent));
  router.post('/v1/refunds', api(createRefund));
  router.get('/v1/refunds', api(listRefunds));
  router.get('/v1/refunds/:id', api(retrieveRefund));
  router.get('/v1/charges/:id', api(retrieveCharge));
  router.get('/v1/balance_transactions', api(listBalanceTransactions));
  router.get('/v1/balance_transactions/:id', api(retrieveBalanceTransaction));
  router.get('/v1/events/:id', api(retrieveEvent));
  router.use(
    '/v1',
    api(({ req }) => {
      throw invalid(
        `Unrecognized request URL (${req.method}: ${req.originalUrl.split('?')[0]}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        {},
        404,
      );
    }),
  );

  router.get('/pay', (req, res) => {
    const clientSecret = typeof req.query.client_secret === 'string' ? req.query.client_secret : '';
    const page = payPage(clientSecret ? store.findIntent({ client_secret: clientSecret }) : undefined, clientSecret);
    res.status(page.status).type('html').send(page.html);
  });

  router.post('/confirm', (req, res) => {
    const body = parseJson(req.body);
    const outcomes = ['SUCCESS', 'FAIL', 'succeeded', 'failed'];
    if (!isRecord(body) || !outcomes.includes(String(body.outcome)) || (!str(body.payment_intent) && !str(body.client_secret))) {
      res.status(400).json({
        code: 'parameter_invalid',
        message: 'expected JSON { payment_intent | client_secret, outcome: SUCCESS | FAIL | succeeded | failed }',
      });
      return;
    }
    const result = confirm({
      payment_intent: str(body.payment_intent),
      client_secret: str(body.client_secret),
      outcome: body.outcome as ConfirmOutcome,
      notify: body.notify !== false,
    });
    if (!result.ok) {
      res.status(result.status).json({ code: result.code, message: result.message });
      return;
    }
    res.status(200).json({ payment_intent: result.payment_intent, status: result.status, latest_charge: result.latest_charge });
  });

  mountControlRoutes(router, {
    invalidCode: 'parameter_invalid',
    refunds,
    invalidBehaviour: 'refundBehaviour: succeeded | pending | failed',
    invalidDelay: 'refundDelayMs must be a non-negative number',
    settleRefund: {
      settle: (s) => {
        const status = String(s.status);
        return ['succeeded', 'failed', 'canceled'].includes(status) && settleRefund(String(s.refund), status as 'succeeded' | 'failed' | 'canceled');
      },
      notFound: { code: 'resource_missing', message: 'no such pending refund (settleRefund: { refund, status })' },
    },
    dispatcher,
    billFaults: billView.faults,
  });

  // ---- the rest of the handle ------------------------------------------------------------------------------------

  function payUrl(clientSecret: string): string {
    return `${baseUrl}/pay?client_secret=${encodeURIComponent(clientSecret)}`;
  }

  function settleRefund(refundId: string, status: 'succeeded' | 'failed' | 'canceled'): boolean {
    const account = store.ownerOf(refundId);
    const refund = account?.refunds.get(refundId);
    return !!account && !!refund && settle(account, refund, status);
  }

  function accountOrThrow(secretKey: string): Account {
    const account = store.account(secretKey);
    if (!account) throw new Error('this secret key is not registered at the simulator');
    return account;
  }

  return {
    router,
    baseUrl,
    store,
    get events() {
      return allEvents;
    },
    get notifications() {
      return dispatcher.attempts;
    },
    registerAccount(account) {
      store.registerAccount(account);
    },
    adapterConfig(credentials, overrides = {}) {
      if (!store.account(credentials.secretKey) || credentials.webhookUrl !== undefined) store.registerAccount(credentials);
      return { secretKey: credentials.secretKey, webhookSecret: credentials.webhookSecret, apiBase: baseUrl, ...overrides };
    },
    payUrl,
    confirm,
    setRefundBehaviour: (behaviour, delayMs) => refunds.set(behaviour, delayMs),
    settleRefund,
    rollWebhookSecret(secretKey, newSecret = `whsec_${randomBase62(32)}`) {
      const account = accountOrThrow(secretKey);
      account.webhookSecrets = [newSecret, ...account.webhookSecrets];
      return newSecret;
    },
    expireOldWebhookSecrets(secretKey) {
      const account = accountOrThrow(secretKey);
      account.webhookSecrets = account.webhookSecrets.slice(0, 1);
    },
    buildEvent(secretKey, input, overrides) {
      const account = accountOrThrow(secretKey);
      const event: WireEvent = {
        id: input.id ?? stripeId('evt'),
        object: 'event',
        api_version: account.apiVersion ?? STRIPE_SIMULATOR_DEFAULT_API_VERSION,
        created: input.created ?? unix(),
        data: { object: input.object, ...(input.previousAttributes ? { previous_attributes: input.previousAttributes } : {}) },
        livemode: input.livemode ?? account.livemode,
        pending_webhooks: 1,
        request: { id: null, idempotency_key: null },
        type: input.type,
        ...input.extra,
      };
      const rawBody = JSON.stringify(event, null, 2);
      return {
        id: event.id,
        event,
        rawBody,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'stripe-signature': stripeSignatureHeader(rawBody, account.webhookSecrets, overrides),
        },
      };
    },
    redeliver(eventId) {
      const account = store.ownerOf(eventId);
      const evt = account?.events.get(eventId);
      const rawBody = rawEvents.get(eventId);
      if (!account || !evt || !rawBody || !account.webhookUrl) return false;
      deliver(account, evt, rawBody);
      return true;
    },
    injectBillDiscrepancy: (d) => billView.faults.inject(d),
    corruptBill: (mode) => billView.faults.corrupt(mode),
    clearBillFaults: () => billView.faults.clear(),
    close() {
      dispatcher.close();
      refunds.close();
    },
  };
}

// ---- parameter helpers -------------------------------------------------------------------------------------------

function allowOnly(params: FormObject, allowed: readonly string[]): void {
  for (const k of Object.keys(params)) {
    if (!allowed.includes(k)) throw invalid(`Received unknown parameter: ${k}`, { code: 'parameter_unknown', param: k });
  }
}

function optionalString(params: FormObject, name: string): string | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(`Invalid ${name}: must be a string`, { code: 'parameter_invalid', param: name });
  return v;
}

function intParam(params: FormObject, name: string, required: boolean): number {
  const v = params[name];
  if (v === undefined || v === '') {
    if (required) throw invalid(`Missing required param: ${name}.`, { code: 'parameter_missing', param: name });
    return NaN;
  }
  if (typeof v !== 'string' || !/^-?\d{1,15}$/.test(v)) {
    throw invalid(`Invalid integer: ${typeof v === 'string' ? v : JSON.stringify(v)}`, { code: 'parameter_invalid_integer', param: name });
  }
  return Number(v);
}

function currencyParam(params: FormObject): string {
  const v = params.currency;
  if (v === undefined || v === '') throw invalid('Missing required param: currency.', { code: 'parameter_missing', param: 'currency' });
  if (typeof v !== 'string' || !/^[A-Za-z]{3}$/.test(v)) {
    throw invalid(`Invalid currency: ${String(v)}. Stripe currently supports these currencies: …`, { code: 'parameter_invalid', param: 'currency' });
  }
  return v.toLowerCase();
}

function stringArrayParam(params: FormObject, name: string): string[] | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw invalid(`Invalid array`, { code: 'parameter_invalid', param: name });
  }
  return v as string[];
}

function expandParam(params: FormObject): string[] {
  const v = params.expand;
  if (v === undefined) return [];
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid('Invalid array', { code: 'parameter_invalid', param: 'expand' });
  return v as string[];
}

function limitParam(params: FormObject): number {
  if (params.limit === undefined) return 10;
  const n = intParam(params, 'limit', false);
  if (n < 1 || n > 100) {
    throw invalid('This value must be greater than or equal to 1 and less than or equal to 100.', { code: 'parameter_invalid_integer', param: 'limit' });
  }
  return n;
}

/** Stripe's metadata rules: up to 50 keys, keys up to 40 characters, values up to 500; empty values drop the key. */
function metadataParam(params: FormObject): Metadata {
  const v = params.metadata;
  if (v === undefined || v === '') return {};
  if (!isObject(v)) throw invalid('Invalid hash', { code: 'parameter_invalid', param: 'metadata' });
  const out: Metadata = {};
  for (const [k, value] of Object.entries(v)) {
    if (typeof value !== 'string') throw invalid(`Invalid value for metadata[${k}]: must be a string`, { code: 'parameter_invalid', param: `metadata[${k}]` });
    if (Array.from(k).length > 40) throw invalid(`Metadata keys can have up to 40 characters; "${k}" is too long.`, { code: 'parameter_invalid', param: 'metadata' });
    if (Array.from(value).length > 500) {
      throw invalid(`Metadata values can have up to 500 characters, but you passed in a value that is ${Array.from(value).length} characters.`, {
        code: 'parameter_invalid',
        param: `metadata[${k}]`,
      });
    }
    if (value !== '') out[k] = value;
  }
  if (Object.keys(out).length > 50) throw invalid('You can specify up to 50 keys in metadata.', { code: 'parameter_invalid', param: 'metadata' });
  return out;
}

/** `created=…` or `created[gt|gte|lt|lte]=…` (Unix seconds) as a predicate. */
function createdFilter(params: FormObject): (created: number) => boolean {
  const v = params.created;
  if (v === undefined) return () => true;
  const num = (x: FormValue | undefined, name: string): number | undefined => {
    if (x === undefined) return undefined;
    if (typeof x !== 'string' || !/^\d{1,12}$/.test(x)) throw invalid(`Invalid integer: ${String(x)}`, { code: 'parameter_invalid_integer', param: name });
    return Number(x);
  };
  if (typeof v === 'string') {
    const exact = num(v, 'created')!;
    return (c) => c === exact;
  }
  if (!isObject(v)) throw invalid('Invalid hash', { code: 'parameter_invalid', param: 'created' });
  for (const k of Object.keys(v)) {
    if (!['gt', 'gte', 'lt', 'lte'].includes(k)) throw invalid(`Received unknown parameter: created[${k}]`, { code: 'parameter_unknown', param: `created[${k}]` });
  }
  const gt = num(v.gt, 'created[gt]');
  const gte = num(v.gte, 'created[gte]');
  const lt = num(v.lt, 'created[lt]');
  const lte = num(v.lte, 'created[lte]');
  return (c) =>
    (gt === undefined || c > gt) && (gte === undefined || c >= gte) && (lt === undefined || c < lt) && (lte === undefined || c <= lte);
}

/** Stripe's list ordering: newest first (ties: the later one first). */
function newestFirst<T extends { created: number }>(items: T[]): T[] {
  return items.reverse().sort((a, b) => b.created - a.created);
}

/** Cursor pagination (`limit`, `starting_after`, `ending_before`) over a newest-first list. */
function paginate<T extends { id: string }>(items: T[], params: FormObject, url: string) {
  const limit = limitParam(params);
  const after = optionalString(params, 'starting_after');
  const before = optionalString(params, 'ending_before');
  let rest = items;
  if (after) {
    const i = items.findIndex((x) => x.id === after);
    if (i < 0) throw invalid(`No such object: '${after}'`, { code: 'resource_missing', param: 'starting_after' });
    rest = items.slice(i + 1);
  } else if (before) {
    const i = items.findIndex((x) => x.id === before);
    if (i < 0) throw invalid(`No such object: '${before}'`, { code: 'resource_missing', param: 'ending_before' });
    const head = items.slice(0, i);
    return { object: 'list' as const, data: head.slice(-limit), has_more: head.length > limit, url };
  }
  return { object: 'list' as const, data: rest.slice(0, limit), has_more: rest.length > limit, url };
}

/**
 * A subset of Stripe's search query language for PaymentIntents: clauses joined by `AND`, each
 * `metadata['key']:'value'` (or double quotes), `status:'…'`, `currency:'…'`, or `amount` / `created` with `:`,
 * `>`, `>=`, `<`, `<=` and a number; a leading `-` negates a clause.
 */
function parseSearchQuery(query: string): (pi: WirePaymentIntent) => boolean {
  const clauses = query.trim().split(/\s+AND\s+/);
  const preds = clauses.map((clause) => {
    const m =
      /^(-)?(?:metadata\[(['"])((?:\\.|(?!\2).)*)\2\]|([a-z_]+))(:|>=|<=|>|<)(?:(['"])((?:\\.|(?!\6).)*)\6|(-?\d+))$/.exec(clause.trim());
    if (!m) throw invalid(`Invalid search query: could not parse "${clause}".`, { code: 'parameter_invalid', param: 'query' });
    const [, neg, , metaKey, field, op, , quoted, number] = m;
    const unescape = (s: string) => s.replace(/\\(.)/g, '$1');
    let pred: (pi: WirePaymentIntent) => boolean;
    if (metaKey !== undefined) {
      if (op !== ':' || quoted === undefined) throw invalid(`Invalid search query: metadata supports only ':' with a quoted value.`, { param: 'query' });
      const key = unescape(metaKey);
      const value = unescape(quoted);
      pred = (pi) => pi.metadata[key] === value;
    } else if (field === 'status' || field === 'currency') {
      if (op !== ':' || quoted === undefined) throw invalid(`Invalid search query: ${field} supports only ':' with a quoted value.`, { param: 'query' });
      const value = unescape(quoted);
      pred = (pi) => pi[field] === value;
    } else if (field === 'amount' || field === 'created') {
      const n = number !== undefined ? Number(number) : quoted !== undefined ? Number(unescape(quoted)) : NaN;
      if (!Number.isFinite(n)) throw invalid(`Invalid search query: ${field} needs a number.`, { param: 'query' });
      const cmp: Record<string, (a: number) => boolean> = {
        ':': (a) => a === n,
        '>': (a) => a > n,
        '>=': (a) => a >= n,
        '<': (a) => a < n,
        '<=': (a) => a <= n,
      };
      pred = (pi) => cmp[op](pi[field]);
    } else {
      throw invalid(`Invalid search query: the field ${field} is not supported by the simulator.`, { code: 'parameter_invalid', param: 'query' });
    }
    return neg ? (pi: WirePaymentIntent) => !pred(pi) : pred;
  });
  return (pi) => preds.every((p) => p(pi));
}

function maskKey(key: string): string {
  if (key.length <= 12) return '*'.repeat(key.length);
  return `${key.slice(0, 8)}${'*'.repeat(key.length - 12)}${key.slice(-4)}`;
}

function isObject(v: unknown): v is Record<string, FormValue> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
