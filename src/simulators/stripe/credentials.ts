import { randomInt } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function randomBase62(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[randomInt(62)];
  return out;
}

/** A Stripe-looking object id: prefix, underscore, 24 base62 characters (`pi_3MtwBwLkdIwHu7ix28a3tqPa`). */
export function stripeId(prefix: string, length = 24): string {
  return `${prefix}_${randomBase62(length)}`;
}

/** What a merchant holds for one Stripe account and webhook endpoint. */
export interface StripeCredentials {
  /** `sk_test_…` (or `sk_live_…` when asked for). */
  secretKey: string;
  /** `pk_test_…`: what Stripe.js would use in the browser (the simulator's pay page needs none). */
  publishableKey: string;
  /** `whsec_…`: the webhook endpoint's signing secret. */
  webhookSecret: string;
}

/** Fresh credentials for the simulator: test-mode keys and a webhook signing secret shaped like Stripe's. */
export function generateStripeCredentials(options: { livemode?: boolean } = {}): StripeCredentials {
  const mode = options.livemode ? 'live' : 'test';
  const account = randomBase62(16);
  return {
    secretKey: `sk_${mode}_51${account}${randomBase62(82)}`,
    publishableKey: `pk_${mode}_51${account}${randomBase62(82)}`,
    webhookSecret: `whsec_${randomBase62(32)}`,
  };
}
