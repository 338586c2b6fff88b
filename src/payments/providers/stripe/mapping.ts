/**
 * Stripe objects and events → the provider interface's states and events. Pure functions, no I/O.
 *
 * Sources: Stripe API reference (PaymentIntent `status`, Refund `status`, event types), "Payment status updates"
 * (docs.stripe.com/payments/paymentintents/lifecycle) and the 2024-10-28.acacia changelog "Adds created, updated,
 * and failed events for all refund types" (`refund.*` events carry the refund; `charge.refunded` carries the
 * charge, whose `refunds` list is no longer included since API version 2022-11-15).
 */
import type Stripe from 'stripe';
import type { NotificationEvent, ProviderPaymentState, ProviderRefundState } from '../provider';

/** Metadata keys the adapter writes on PaymentIntents and Refunds. */
export const METADATA_PAYMENT_NO = 'paymentNo';
export const METADATA_REFUND_NO = 'refundNo';

/**
 * PaymentIntent status → payment state.
 * `requires_payment_method` is PENDING even after a declined attempt (`last_payment_error` set): the customer can
 * retry with another card on the same intent, so a decline is not final. FAILED comes only from the
 * `payment_intent.payment_failed` event, which reports that one attempt failed.
 */
export const PAYMENT_INTENT_STATE: Readonly<Record<Stripe.PaymentIntent.Status, ProviderPaymentState>> = {
  requires_payment_method: 'PENDING',
  requires_confirmation: 'PENDING',
  requires_action: 'PENDING',
  processing: 'PENDING',
  // Manual capture is not used here (capture_method automatic); an authorized, uncaptured intent is not paid yet.
  requires_capture: 'PENDING',
  canceled: 'CLOSED',
  succeeded: 'SUCCEEDED',
};

/** Refund status → refund state (`requires_action`: some non-card methods need the customer's details first). */
export const REFUND_STATE: Readonly<Record<string, ProviderRefundState>> = {
  pending: 'PENDING',
  requires_action: 'PENDING',
  succeeded: 'SUCCEEDED',
  failed: 'FAILED',
  canceled: 'FAILED',
};

export function paymentState(status: string): ProviderPaymentState | undefined {
  return PAYMENT_INTENT_STATE[status as Stripe.PaymentIntent.Status];
}

export function refundState(status: string | null | undefined): ProviderRefundState | undefined {
  return status ? REFUND_STATE[status] : undefined;
}

/** The id of an expandable field (`'ch_…'` or `{ id: 'ch_…', … }`). */
export function expandableId(v: string | { id: string } | null | undefined): string | undefined {
  if (typeof v === 'string') return v || undefined;
  if (v && typeof v === 'object' && typeof v.id === 'string') return v.id;
  return undefined;
}

const fromUnix = (s: unknown): Date | undefined => (typeof s === 'number' && Number.isFinite(s) ? new Date(s * 1000) : undefined);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function metadataValue(obj: Record<string, unknown>, key: string): string | undefined {
  const md = obj.metadata;
  if (!isObject(md)) return undefined;
  const v = md[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * The normalized event of a verified Stripe event, or `undefined` when its object lacks what the type must carry
 * (the caller reports that as malformed).
 *
 * - `payment_intent.succeeded` → payment SUCCEEDED, amount `amount_received`, transaction id `latest_charge`,
 *   paid at the event's `created`;
 * - `payment_intent.payment_failed` → payment FAILED (one attempt failed; the intent stays payable);
 * - `payment_intent.canceled` → payment CLOSED;
 * - `refund.created` / `refund.updated` / `refund.failed` → the refund's state, matched by `metadata.refundNo`;
 * - `charge.refunded` → a refund event only when the charge still carries its `refunds` list (API versions before
 *   2022-11-15, or an expanded list): the newest refund with a `refundNo`; otherwise ignored, because the
 *   `refund.*` events carry the details;
 * - intents and refunds without our metadata (made in the Dashboard), and every other type → ignored.
 */
export function toNotificationEvent(event: Stripe.Event): NotificationEvent | undefined {
  const object: unknown = event.data?.object;
  if (!isObject(object)) return undefined;
  switch (event.type) {
    case 'payment_intent.succeeded':
    case 'payment_intent.payment_failed':
    case 'payment_intent.canceled': {
      if (object.object !== 'payment_intent') return undefined;
      const pi = object as unknown as Stripe.PaymentIntent;
      const paymentNo = metadataValue(object, METADATA_PAYMENT_NO);
      if (!paymentNo) return { type: 'ignored', reason: `${event.type} for ${pi.id} without metadata.${METADATA_PAYMENT_NO}` };
      const succeeded = event.type === 'payment_intent.succeeded';
      const amount = succeeded ? pi.amount_received : pi.amount;
      if (!Number.isSafeInteger(amount)) return undefined;
      return {
        type: 'payment',
        paymentNo,
        status: succeeded ? 'SUCCEEDED' : event.type === 'payment_intent.canceled' ? 'CLOSED' : 'FAILED',
        providerTransactionId: expandableId(pi.latest_charge) ?? pi.id,
        amount,
        currency: typeof pi.currency === 'string' ? pi.currency.toUpperCase() : undefined,
        ...(succeeded ? { paidAt: fromUnix(event.created) } : {}),
      };
    }
    case 'refund.created':
    case 'refund.updated':
    case 'refund.failed': {
      if (object.object !== 'refund') return undefined;
      return refundEvent(object as unknown as Stripe.Refund, event.type);
    }
    case 'charge.refunded': {
      if (object.object !== 'charge') return undefined;
      const charge = object as unknown as Stripe.Charge;
      const paymentNo = metadataValue(object, METADATA_PAYMENT_NO);
      const listed = Array.isArray(charge.refunds?.data) ? charge.refunds.data : [];
      const ours = listed
        .filter((r) => isObject(r) && metadataValue(r as unknown as Record<string, unknown>, METADATA_REFUND_NO))
        .sort((a, b) => b.created - a.created);
      if (ours.length === 0) {
        return { type: 'ignored', paymentNo, reason: 'charge.refunded without refund details (refund.* events carry them)' };
      }
      return refundEvent(ours[0], event.type, paymentNo);
    }
    default:
      return {
        type: 'ignored',
        paymentNo: metadataValue(object, METADATA_PAYMENT_NO),
        reason: `event ${event.type}`,
      };
  }
}

function refundEvent(refund: Stripe.Refund, eventType: string, paymentNo?: string): NotificationEvent | undefined {
  const obj = refund as unknown as Record<string, unknown>;
  const refundNo = metadataValue(obj, METADATA_REFUND_NO);
  if (!refundNo) return { type: 'ignored', paymentNo, reason: `${eventType} for ${refund.id} without metadata.${METADATA_REFUND_NO}` };
  const status = refundState(refund.status);
  if (!status) return undefined;
  return {
    type: 'refund',
    refundNo,
    paymentNo: metadataValue(obj, METADATA_PAYMENT_NO) ?? paymentNo,
    status,
    amount: Number.isSafeInteger(refund.amount) ? refund.amount : undefined,
    providerRefundId: refund.id,
  };
}
