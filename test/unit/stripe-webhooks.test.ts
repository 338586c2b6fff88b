import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import type { ParsedNotification } from '../../src/payments/providers/provider';
import { StripeProvider } from '../../src/payments/providers/stripe';

/**
 * Webhook verification and mapping, with events signed by stripe-node's own test signer
 * (`stripe.webhooks.generateTestHeaderString`): an independent peer for the adapter's verification path.
 */

const secret = 'whsec_test_0123456789abcdefghijklmnopqrstuv';
const otherSecret = 'whsec_test_zyxwvutsrqponmlkjihgfedcba9876';
const adapter = new StripeProvider({ secretKey: 'sk_test_51unit000000000000000000', webhookSecret: secret, apiBase: 'http://127.0.0.1:9' });
const liveAdapter = new StripeProvider({ secretKey: 'sk_live_51unit000000000000000000', webhookSecret: secret, apiBase: 'http://127.0.0.1:9' });
const now = () => Math.floor(Date.now() / 1000);

let seq = 0;
function event(type: string, object: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    id: `evt_unit${String(++seq).padStart(20, '0')}`,
    object: 'event',
    api_version: '2026-02-25.clover',
    created: 1_790_000_000,
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    ...extra,
  };
}

function signed(payload: string, over: { secret?: string; timestamp?: number } = {}) {
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: over.secret ?? secret, timestamp: over.timestamp ?? now() });
  return { headers: { 'stripe-signature': header, 'content-type': 'application/json' }, rawBody: Buffer.from(payload, 'utf8') };
}

const parse = (payload: string, over: { secret?: string; timestamp?: number } = {}, using = adapter) => using.parseNotification(signed(payload, over));

const intent = (over: Record<string, unknown> = {}) => ({
  id: 'pi_3UnitTest000000000000001',
  object: 'payment_intent',
  amount: 8800,
  amount_received: 8800,
  currency: 'usd',
  latest_charge: 'ch_3UnitTest000000000000001',
  metadata: { paymentNo: 'P-UNIT-1' },
  status: 'succeeded',
  created: 1_789_999_000,
  ...over,
});

const refund = (over: Record<string, unknown> = {}) => ({
  id: 're_3UnitTest000000000000001',
  object: 'refund',
  amount: 3000,
  charge: 'ch_3UnitTest000000000000001',
  created: 1_790_000_100,
  currency: 'usd',
  metadata: { refundNo: 'R-UNIT-1', paymentNo: 'P-UNIT-1' },
  payment_intent: 'pi_3UnitTest000000000000001',
  status: 'succeeded',
  ...over,
});

const ok = (r: ParsedNotification) => {
  if (!r.ok) throw new Error(`refused: ${r.reason}`);
  return r;
};

describe('signature verification (signed by stripe.webhooks.generateTestHeaderString)', () => {
  const body = JSON.stringify(event('payment_intent.succeeded', intent()), null, 2);

  it('accepts a valid signature on the raw bytes', async () => {
    expect(ok(await parse(body))).toMatchObject({ notificationId: expect.stringMatching(/^evt_/), event: { type: 'payment' } });
  });

  it('refuses a tampered body (even a whitespace change: the raw bytes are what is signed)', async () => {
    const { headers } = signed(body);
    for (const tampered of [body.replace('"amount_received": 8800', '"amount_received": 1'), JSON.stringify(JSON.parse(body))]) {
      const r = await adapter.parseNotification({ headers, rawBody: Buffer.from(tampered) });
      expect(r.ok).toBe(false);
      expect(!r.ok && r.reason).toMatch(/No signatures found matching the expected signature/);
    }
  });

  it('refuses a signature made with another secret', async () => {
    const r = await parse(body, { secret: otherSecret });
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/signature verification failed/) });
  });

  it('refuses a timestamp older than 300 s, accepts one just inside, refuses one far in the future', async () => {
    expect(await parse(body, { timestamp: now() - 301 })).toMatchObject({ ok: false, reason: expect.stringMatching(/tolerance/) });
    expect((await parse(body, { timestamp: now() - 290 })).ok).toBe(true);
    expect(await parse(body, { timestamp: now() + 600 })).toMatchObject({ ok: false, reason: expect.stringMatching(/future/) });
  });

  it('accepts two v1 signatures during a secret roll when one of them is valid, in either order', async () => {
    const t = now();
    const sig = (s: string) => Stripe.webhooks.generateTestHeaderString({ payload: body, secret: s, timestamp: t }).split(',v1=')[1];
    const rawBody = Buffer.from(body);
    for (const header of [`t=${t},v1=${sig(otherSecret)},v1=${sig(secret)}`, `t=${t},v1=${sig(secret)},v1=${sig(otherSecret)}`]) {
      expect((await adapter.parseNotification({ headers: { 'stripe-signature': header }, rawBody })).ok).toBe(true);
    }
    const neither = `t=${t},v1=${sig(otherSecret)},v1=${'0'.repeat(64)}`;
    expect((await adapter.parseNotification({ headers: { 'stripe-signature': neither }, rawBody })).ok).toBe(false);
    // A v0 (legacy scheme) signature is never trusted.
    expect((await adapter.parseNotification({ headers: { 'stripe-signature': `t=${t},v0=${sig(secret)}` }, rawBody })).ok).toBe(false);
  });

  it('refuses a missing header, an unsigned header and a signed body that is not an event', async () => {
    expect(await adapter.parseNotification({ headers: {}, rawBody: Buffer.from(body) })).toMatchObject({ ok: false, reason: expect.stringMatching(/missing/) });
    expect(await adapter.parseNotification({ headers: { 'stripe-signature': 'garbage' }, rawBody: Buffer.from(body) })).toMatchObject({ ok: false });
    expect(await parse('not json')).toMatchObject({ ok: false, reason: 'body is not JSON' });
    expect(await parse('{"hello":"world"}')).toMatchObject({ ok: false, reason: 'not a Stripe event' });
  });

  it('replies as Stripe expects: 200 {"received":true}, or 400', () => {
    expect(adapter.notificationReply(true)).toEqual({ status: 200, contentType: 'application/json', body: '{"received":true}' });
    expect(adapter.notificationReply(false)).toMatchObject({ status: 400, body: 'Webhook signature verification failed' });
  });
});

describe('event mapping', () => {
  const map = async (type: string, object: Record<string, unknown>, extra: Record<string, unknown> = {}, using = adapter) =>
    using.parseNotification(signed(JSON.stringify(event(type, object, extra))));

  it('payment_intent.succeeded → SUCCEEDED with amount_received, the charge id and the event time', async () => {
    const r = ok(await map('payment_intent.succeeded', intent({ amount: 9000, amount_received: 8800 })));
    expect(r.event).toEqual({
      type: 'payment',
      paymentNo: 'P-UNIT-1',
      status: 'SUCCEEDED',
      providerTransactionId: 'ch_3UnitTest000000000000001',
      amount: 8800,
      currency: 'USD',
      paidAt: new Date(1_790_000_000 * 1000),
    });
    expect(r.payload).toMatchObject({ created: 1_790_000_000, type: 'payment_intent.succeeded' });
    expect(r.mismatch).toBeUndefined();
  });

  it('an expanded latest_charge still yields its id', async () => {
    const r = ok(await map('payment_intent.succeeded', intent({ latest_charge: { id: 'ch_expanded', object: 'charge' } })));
    expect(r.event).toMatchObject({ providerTransactionId: 'ch_expanded' });
  });

  it('payment_intent.payment_failed → FAILED; payment_intent.canceled → CLOSED (amount: the intent amount)', async () => {
    const failed = intent({ status: 'requires_payment_method', amount_received: 0, last_payment_error: { code: 'card_declined' } });
    expect(ok(await map('payment_intent.payment_failed', failed)).event).toMatchObject({ type: 'payment', status: 'FAILED', amount: 8800 });
    const canceled = intent({ status: 'canceled', amount_received: 0, latest_charge: null });
    expect(ok(await map('payment_intent.canceled', canceled)).event).toMatchObject({
      type: 'payment',
      status: 'CLOSED',
      amount: 8800,
      providerTransactionId: 'pi_3UnitTest000000000000001',
    });
  });

  it('refund.created / refund.updated / refund.failed → the refund by metadata.refundNo and its status', async () => {
    expect(ok(await map('refund.created', refund())).event).toEqual({
      type: 'refund',
      refundNo: 'R-UNIT-1',
      paymentNo: 'P-UNIT-1',
      status: 'SUCCEEDED',
      amount: 3000,
      providerRefundId: 're_3UnitTest000000000000001',
    });
    expect(ok(await map('refund.created', refund({ status: 'pending' }))).event).toMatchObject({ status: 'PENDING' });
    expect(ok(await map('refund.updated', refund({ status: 'requires_action' }))).event).toMatchObject({ status: 'PENDING' });
    expect(ok(await map('refund.updated', refund({ status: 'canceled' }))).event).toMatchObject({ status: 'FAILED' });
    expect(ok(await map('refund.failed', refund({ status: 'failed' }))).event).toMatchObject({ status: 'FAILED' });
  });

  it('charge.refunded → the newest refund of ours when the charge lists its refunds, else ignored', async () => {
    const charge = (refunds?: unknown[]) => ({
      id: 'ch_3UnitTest000000000000001',
      object: 'charge',
      amount: 8800,
      amount_refunded: 8800,
      refunded: true,
      metadata: { paymentNo: 'P-UNIT-1' },
      ...(refunds ? { refunds: { object: 'list', data: refunds, has_more: false } } : {}),
    });
    const listed = charge([
      refund({ id: 're_new_dashboard', created: 1_790_000_300, metadata: {} }),
      refund({ id: 're_new', amount: 5800, created: 1_790_000_200, metadata: { refundNo: 'R-UNIT-2' } }),
      refund(),
    ]);
    expect(ok(await map('charge.refunded', listed)).event).toEqual({
      type: 'refund',
      refundNo: 'R-UNIT-2',
      paymentNo: 'P-UNIT-1',
      status: 'SUCCEEDED',
      amount: 5800,
      providerRefundId: 're_new',
    });
    expect(ok(await map('charge.refunded', charge())).event).toMatchObject({ type: 'ignored', paymentNo: 'P-UNIT-1' });
  });

  it('objects without our metadata and other event types are ignored; malformed objects are refused', async () => {
    expect(ok(await map('payment_intent.succeeded', intent({ metadata: {} }))).event).toMatchObject({ type: 'ignored' });
    expect(ok(await map('refund.created', refund({ metadata: {} }))).event).toMatchObject({ type: 'ignored' });
    expect(ok(await map('charge.succeeded', { id: 'ch_1', object: 'charge', metadata: { paymentNo: 'P-UNIT-1' } })).event).toEqual({
      type: 'ignored',
      paymentNo: 'P-UNIT-1',
      reason: 'event charge.succeeded',
    });
    expect(ok(await map('customer.created', { id: 'cus_1', object: 'customer' })).event).toMatchObject({ type: 'ignored' });

    const noAmount = await map('payment_intent.succeeded', intent({ amount_received: undefined }));
    expect(noAmount).toMatchObject({ ok: false, reason: 'malformed payment_intent.succeeded event', notificationId: expect.stringMatching(/^evt_/) });
    expect(await map('refund.created', refund({ status: 'weird' }))).toMatchObject({ ok: false });
    expect(await map('payment_intent.succeeded', { ...refund() })).toMatchObject({ ok: false });
  });

  it('flags an event whose livemode is not the secret key\'s mode, or from a connected account', async () => {
    const live = ok(await map('payment_intent.succeeded', intent(), { livemode: true }));
    expect(live.mismatch).toMatch(/livemode is true but the secret key is a test key/);
    expect(ok(await map('payment_intent.succeeded', intent(), { livemode: true }, liveAdapter)).mismatch).toBeUndefined();
    expect(ok(await map('payment_intent.succeeded', intent(), {}, liveAdapter)).mismatch).toMatch(/live key/);
    expect(ok(await map('payment_intent.succeeded', intent(), { account: 'acct_other' })).mismatch).toMatch(/acct_other/);
  });
});

describe('configuration', () => {
  it('refuses keys and secrets that cannot be right, saying which variable', () => {
    expect(() => new StripeProvider({ secretKey: 'pk_test_abc', webhookSecret: secret })).toThrow(/STRIPE_SECRET_KEY/);
    expect(() => new StripeProvider({ secretKey: 'sk_test_abc', webhookSecret: '' })).toThrow(/STRIPE_WEBHOOK_SECRET/);
    expect(() => new StripeProvider({ secretKey: 'sk_test_abc', webhookSecret: `${secret}\n` })).toThrow(/whitespace/);
    expect(() => new StripeProvider({ secretKey: 'sk_test_abc', webhookSecret: secret, apiBase: 'ftp://x' })).toThrow(/STRIPE_API_BASE/);
  });
});
