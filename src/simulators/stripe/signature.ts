/**
 * Stripe webhook signatures, written from Stripe's documentation ("Verify signatures manually",
 * docs.stripe.com/webhooks#verify-manually) and independently of stripe-node:
 * `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` keyed with the whole `whsec_…`
 * secret; while an endpoint's secret is being rolled, one `v1` per active secret.
 */
import { createHmac } from 'node:crypto';

export function computeSignature(timestamp: number, rawBody: string | Buffer, secret: string): string {
  return createHmac('sha256', secret)
    .update(`${timestamp}.`, 'utf8')
    .update(typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody)
    .digest('hex');
}

export interface SignatureOverrides {
  /** Unix seconds; default now. */
  timestamp?: number;
  /** Replaces the computed signatures (e.g. a forged one). */
  signatures?: string[];
}

/** The `Stripe-Signature` header value for `rawBody`, one `v1` per secret. */
export function stripeSignatureHeader(
  rawBody: string | Buffer,
  secrets: string | readonly string[],
  overrides: SignatureOverrides = {},
): string {
  const t = overrides.timestamp ?? Math.floor(Date.now() / 1000);
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  const sigs = overrides.signatures ?? list.map((s) => computeSignature(t, rawBody, s));
  return [`t=${t}`, ...sigs.map((s) => `v1=${s}`)].join(',');
}
