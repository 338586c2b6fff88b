import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentChannel } from '../../src/payments/channels';
import { ProviderNetworkError, ProviderRejectedError } from '../../src/payments/providers/errors';
import type { CreatePaymentInput, NotificationEvent, ParsedNotification, RefundInput } from '../../src/payments/providers/provider';
import { createStripeClient, StripeProvider, type StripeConfig } from '../../src/payments/providers/stripe';
import {
  createStripeSimulator,
  generateStripeCredentials,
  type StripeCredentials,
  type StripeSimulator,
  type WireEvent,
} from '../../src/simulators/stripe';
import { closedPort, rejection, SimulatorHarness, waitFor, type ReceivedNotification } from '../helpers/simulator-harness';

interface Received extends ReceivedNotification {
  event: WireEvent;
}

const harness = new SimulatorHarness();
const { app, postJson } = harness;
let origin: string;
let sim: StripeSimulator;
let local: StripeSimulator | undefined;
let creds: StripeCredentials;
let config: StripeConfig;
let adapter: StripeProvider;

/** Webhooks received per tag (`/notify/stripe/:tag`), and statuses to answer before the default 200. */
const { inbox, scripted } = harness.notifyReceiver<number, Received>(
  '/notify/stripe',
  (res, status) => {
    res.status(status ?? 200).json({ received: true });
  },
  (r) => ({ ...r, event: JSON.parse(r.rawBody.toString('utf8')) as WireEvent }),
);

let seq = 0;
const paymentNo = () => `P${Date.now()}${String(++seq).padStart(4, '0')}`;
const webhookUrl = (tag: string) => `${origin}/notify/stripe/${tag}`;

const objectOf = (r: Received) => r.event.data.object as Record<string, any>;

/** Webhooks of `tag` whose object belongs to `no` (metadata.paymentNo), optionally of one type. */
function received(tag: string, no: string, type?: string): Received[] {
  return (inbox.get(tag) ?? []).filter((r) => objectOf(r).metadata?.paymentNo === no && (!type || r.event.type === type));
}

const waitForEvent = (tag: string, no: string, type: string, count = 1) =>
  waitFor(() => {
    const got = received(tag, no, type);
    return got.length >= count && got;
  });

function input(over: Partial<CreatePaymentInput> = {}): CreatePaymentInput {
  return {
    channel: PaymentChannel.STRIPE_CARD,
    paymentNo: paymentNo(),
    amount: 8800,
    currency: 'USD',
    description: 'Order O-1: 2 × green tea',
    expiresAt: new Date(Date.now() + 15 * 60_000),
    notifyUrl: `${origin}/notify/stripe`,
    ...over,
  };
}

async function parsedOk(r: Received, using: StripeProvider = adapter): Promise<NotificationEvent> {
  const parsed = await using.parseNotification({ headers: r.headers, rawBody: r.rawBody });
  if (!parsed.ok) throw new Error(`notification refused: ${parsed.reason}`);
  expect(parsed.notificationId).toBe(r.event.id);
  return parsed.event;
}

beforeAll(async () => {
  harness.mount('/simulator/stripe', () => sim?.router);
  harness.mount('/local/stripe', () => local?.router);
  // Misbehaving "Stripe" endpoints.
  app.use('/broken', (_req, res) => {
    res.status(500).json({ error: { type: 'api_error', message: 'Something went wrong on our end.' } });
  });
  app.use('/hang', () => {
    /* never answers */
  });

  origin = await harness.listen();

  sim = createStripeSimulator({ publicBaseUrl: origin, timeScale: 1000 });
  creds = generateStripeCredentials();
  config = sim.adapterConfig({ ...creds, webhookUrl: webhookUrl('main') }, { timeoutMs: 3000 });
  adapter = new StripeProvider(config);
});

afterAll(async () => {
  sim?.close();
  local?.close();
  await harness.close();
});

describe('create', () => {
  it('answers a client secret; the same paymentNo again is the same intent, other parameters are refused', async () => {
    const req = input();
    const created = await adapter.createPayment(req);
    expect(created.providerReference).toMatch(/^pi_\w{24}$/);
    expect(created.clientSecret).toMatch(new RegExp(`^${created.providerReference}_secret_\\w+$`));
    expect(created.raw).toMatchObject({ id: created.providerReference, object: 'payment_intent', status: 'requires_payment_method' });
    expect(created.raw).not.toHaveProperty('client_secret');

    const pi = sim.store.findIntent({ payment_intent: created.providerReference })!.pi;
    expect(pi).toMatchObject({
      amount: 8800,
      currency: 'usd',
      description: req.description,
      metadata: { paymentNo: req.paymentNo },
      payment_method_types: ['card'],
      livemode: false,
    });

    const again = await adapter.createPayment(req);
    expect(again).toMatchObject({ providerReference: created.providerReference, clientSecret: created.clientSecret });
    const account = sim.store.account(creds.secretKey)!;
    expect([...account.intents.values()].filter((x) => x.metadata.paymentNo === req.paymentNo)).toHaveLength(1);

    const err = await rejection(adapter.createPayment({ ...req, amount: 100 }));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: 'idempotency_error', httpStatus: 400, provider: 'stripe' });
  });

  it('sends zero-decimal amounts as they are (JPY 500 is ¥500) and the card page shows them', async () => {
    const created = await adapter.createPayment(input({ amount: 500, currency: 'JPY' }));
    expect(sim.store.findIntent({ payment_intent: created.providerReference })!.pi).toMatchObject({ amount: 500, currency: 'jpy' });
    const page = await fetch(sim.payUrl(created.clientSecret!));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('¥500<');
    expect(html).not.toMatch(/<(link|script)[^>]+(src|href)=/);
  });

  it('refuses an amount under Stripe\'s minimum and a channel it does not serve', async () => {
    expect(await rejection(adapter.createPayment(input({ amount: 10 })))).toMatchObject({ providerCode: 'amount_too_small', httpStatus: 400 });
    const err = await rejection(adapter.createPayment(input({ channel: PaymentChannel.WECHAT_NATIVE })));
    expect(err).toMatchObject({ providerCode: 'UNSUPPORTED_CHANNEL' });
  });
});

describe('query, confirm and webhooks', () => {
  it('PENDING, then SUCCEEDED after /confirm; the webhook verifies and maps with amount and charge id', async () => {
    const req = input();
    const created = await adapter.createPayment(req);
    const ref = { ...req, providerReference: created.providerReference };
    expect(await adapter.queryPayment(ref)).toMatchObject({ state: 'PENDING', raw: { status: 'requires_payment_method' } });
    // Without the intent id (a create whose answer was lost) it is found by metadata.
    expect(await adapter.queryPayment({ ...req, providerReference: null })).toMatchObject({ state: 'PENDING' });

    const confirmed = await postJson('/simulator/stripe/confirm', { payment_intent: created.providerReference, outcome: 'SUCCESS' });
    expect(confirmed).toMatchObject({ status: 200, body: { payment_intent: created.providerReference, status: 'succeeded' } });
    const chargeId = confirmed.body.latest_charge as string;
    expect(chargeId).toMatch(/^ch_\w+$/);

    const q = await adapter.queryPayment(ref);
    expect(q).toMatchObject({ state: 'SUCCEEDED', providerTransactionId: chargeId, amount: 8800 });
    expect(Math.abs(q.paidAt!.getTime() - Date.now())).toBeLessThan(5000);

    const [n] = await waitForEvent('main', req.paymentNo, 'payment_intent.succeeded');
    expect(n.headers['stripe-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(n.headers['content-type']).toMatch(/^application\/json/);
    expect(n.rawBody.toString()).toContain('\n  "id": "evt_'); // pretty-printed, as Stripe sends it
    expect(n.event).toMatchObject({ object: 'event', livemode: false, data: { object: { id: created.providerReference, amount_received: 8800 } } });

    const parsed = await adapter.parseNotification({ headers: n.headers, rawBody: n.rawBody });
    expect(parsed).toMatchObject({
      ok: true,
      notificationId: n.event.id,
      event: { type: 'payment', status: 'SUCCEEDED', paymentNo: req.paymentNo, amount: 8800, currency: 'USD', providerTransactionId: chargeId },
      payload: { id: n.event.id, created: n.event.created },
    });
    expect((parsed as Extract<ParsedNotification, { ok: true }>).mismatch).toBeUndefined();
    const attempts = await waitFor(() => {
      const a = sim.notifications.filter((x) => x.notificationId === n.event.id);
      return a.length > 0 && a;
    });
    expect(attempts).toMatchObject([{ attempt: 1, status: 200, acknowledged: true, label: 'payment_intent.succeeded', url: webhookUrl('main') }]);

    // The card page now says so; paying twice is refused.
    expect(await (await fetch(sim.payUrl(created.clientSecret!))).text()).toContain('has succeeded');
    expect((await postJson('/simulator/stripe/confirm', { client_secret: created.clientSecret, outcome: 'SUCCESS' })).status).toBe(409);
  });

  it('a declined card sends payment_intent.payment_failed (FAILED); the intent stays payable and reads PENDING', async () => {
    const req = input({ amount: 1999 });
    const created = await adapter.createPayment(req);
    const ref = { ...req, providerReference: created.providerReference };
    const declined = await postJson('/simulator/stripe/confirm', { client_secret: created.clientSecret, outcome: 'failed' });
    expect(declined.body.status).toBe('requires_payment_method');

    const [n] = await waitForEvent('main', req.paymentNo, 'payment_intent.payment_failed');
    expect(n.event.data.object).toMatchObject({ last_payment_error: { code: 'card_declined', type: 'card_error' } });
    expect(await parsedOk(n)).toMatchObject({ type: 'payment', status: 'FAILED', paymentNo: req.paymentNo, amount: 1999 });
    expect(await adapter.queryPayment(ref)).toMatchObject({ state: 'PENDING', providerTransactionId: undefined });

    expect((await postJson('/simulator/stripe/confirm', { payment_intent: created.providerReference, outcome: 'succeeded' })).status).toBe(200);
    expect(await adapter.queryPayment(ref)).toMatchObject({ state: 'SUCCEEDED', amount: 1999 });
  });

  it('notify:false records the payment silently; unknown payments are NOT_FOUND', async () => {
    const req = input();
    const created = await adapter.createPayment(req);
    expect(sim.confirm({ payment_intent: created.providerReference!, outcome: 'SUCCESS', notify: false })).toMatchObject({ ok: true });
    expect((await adapter.queryPayment({ ...req, providerReference: created.providerReference })).state).toBe('SUCCEEDED');
    await new Promise((r) => setTimeout(r, 100));
    expect(received('main', req.paymentNo)).toHaveLength(0);
    expect(sim.events.some((e) => e.type === 'payment_intent.succeeded' && (e.data.object as { id: string }).id === created.providerReference)).toBe(true);

    const none = { channel: PaymentChannel.STRIPE_CARD, paymentNo: 'NOPE000001' };
    expect((await adapter.queryPayment(none)).state).toBe('NOT_FOUND');
    expect((await adapter.queryPayment({ ...none, providerReference: 'pi_000000000000000000000000' })).state).toBe('NOT_FOUND');
    expect((await postJson('/simulator/stripe/confirm', { payment_intent: 'pi_nope', outcome: 'SUCCESS' })).status).toBe(404);
  });

  it('an intent id that belongs to another payment is refused', async () => {
    const created = await adapter.createPayment(input());
    const err = await rejection(adapter.queryPayment({ ...input(), providerReference: created.providerReference }));
    expect(err).toMatchObject({ providerCode: 'PAYMENT_MISMATCH' });
  });
});

describe('webhook delivery', () => {
  it('retries until a 2xx: 500, 500, 200 → exactly 3 deliveries of the same event, each verifiable', async () => {
    const retryCreds = generateStripeCredentials();
    const retryAdapter = new StripeProvider(sim.adapterConfig({ ...retryCreds, webhookUrl: webhookUrl('retry') }));
    scripted.set('retry', [500, 500]);
    const req = input();
    const created = await retryAdapter.createPayment(req);
    sim.confirm({ payment_intent: created.providerReference!, outcome: 'SUCCESS' });

    const got = await waitForEvent('retry', req.paymentNo, 'payment_intent.succeeded', 3);
    await new Promise((r) => setTimeout(r, 300)); // a fourth would have come 1.8 s later at ×1000; none is due
    expect(received('retry', req.paymentNo)).toHaveLength(3);
    expect(new Set(got.map((n) => n.event.id)).size).toBe(1);
    expect(got[1].rawBody.equals(got[0].rawBody)).toBe(true);
    for (const n of got) expect(await parsedOk(n, retryAdapter)).toMatchObject({ type: 'payment', status: 'SUCCEEDED' });
    // The main account's secret does not verify another endpoint's events.
    expect(await adapter.parseNotification({ headers: got[0].headers, rawBody: got[0].rawBody })).toMatchObject({ ok: false });
    expect(sim.notifications.filter((a) => a.notificationId === got[0].event.id).map((a) => [a.attempt, a.status, a.acknowledged])).toEqual([
      [1, 500, false],
      [2, 500, false],
      [3, 200, true],
    ]);
  });

  it('while a secret is rolled, deliveries carry one v1 per secret and verify with either', async () => {
    const rollCreds = generateStripeCredentials();
    const oldConfig = sim.adapterConfig({ ...rollCreds, webhookUrl: webhookUrl('roll') });
    const oldAdapter = new StripeProvider(oldConfig);
    const newSecret = sim.rollWebhookSecret(rollCreds.secretKey);
    const newAdapter = new StripeProvider({ ...oldConfig, webhookSecret: newSecret });
    const req = input();
    const created = await oldAdapter.createPayment(req);
    sim.confirm({ payment_intent: created.providerReference!, outcome: 'SUCCESS' });
    const [n] = await waitForEvent('roll', req.paymentNo, 'payment_intent.succeeded');
    expect(n.headers['stripe-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    expect(await parsedOk(n, oldAdapter)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await parsedOk(n, newAdapter)).toMatchObject({ status: 'SUCCEEDED' });

    sim.expireOldWebhookSecrets(rollCreds.secretKey);
    expect(sim.redeliver(n.event.id)).toBe(true);
    const both = await waitForEvent('roll', req.paymentNo, 'payment_intent.succeeded', 2);
    expect(both[1].headers['stripe-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect((await newAdapter.parseNotification({ headers: both[1].headers, rawBody: both[1].rawBody })).ok).toBe(true);
    expect((await oldAdapter.parseNotification({ headers: both[1].headers, rawBody: both[1].rawBody })).ok).toBe(false);
  });

  it('close() cancels pending retries', async () => {
    local = createStripeSimulator({ publicBaseUrl: origin, mountPath: '/local/stripe', timeScale: 100 });
    const localCreds = generateStripeCredentials();
    const localAdapter = new StripeProvider(local.adapterConfig({ ...localCreds, webhookUrl: webhookUrl('closing') }));
    scripted.set('closing', [500, 500, 500, 500]);
    const req = input();
    const created = await localAdapter.createPayment(req);
    expect(local.confirm({ payment_intent: created.providerReference!, outcome: 'SUCCESS' })).toMatchObject({ ok: true });
    await waitFor(() => local!.notifications.length === 1);
    local.close();
    await new Promise((r) => setTimeout(r, 900)); // the first retry was due 600 ms later
    expect(local.notifications).toHaveLength(1);
    expect(received('closing', req.paymentNo)).toHaveLength(1);
  });
});

describe('close', () => {
  it('cancels an unpaid intent: CLOSED, a payment_intent.canceled webhook, no longer payable; closing again is fine', async () => {
    const req = input();
    const created = await adapter.createPayment(req);
    const ref = { ...req, providerReference: created.providerReference };
    await adapter.closePayment(ref);
    expect(await adapter.queryPayment(ref)).toMatchObject({ state: 'CLOSED', raw: { status: 'canceled', cancellation_reason: 'abandoned' } });
    const [n] = await waitForEvent('main', req.paymentNo, 'payment_intent.canceled');
    expect(await parsedOk(n)).toMatchObject({ type: 'payment', status: 'CLOSED', paymentNo: req.paymentNo, amount: 8800 });
    expect((await postJson('/simulator/stripe/confirm', { payment_intent: created.providerReference, outcome: 'SUCCESS' })).status).toBe(409);
    await adapter.closePayment(ref);
    await adapter.closePayment({ ...ref, providerReference: null });
    expect(await (await fetch(sim.payUrl(created.clientSecret!))).text()).toContain('canceled');
  });

  it('a succeeded intent cannot be canceled: ProviderRejectedError ORDER_PAID', async () => {
    const req = input();
    const created = await adapter.createPayment(req);
    sim.confirm({ payment_intent: created.providerReference!, outcome: 'SUCCESS', notify: false });
    const err = await rejection(adapter.closePayment({ ...req, providerReference: created.providerReference }));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: 'ORDER_PAID', httpStatus: 400, provider: 'stripe' });
    // Found by paymentNo as well.
    expect(await rejection(adapter.closePayment(req))).toMatchObject({ providerCode: 'ORDER_PAID' });
  });

  it('a payment never created at Stripe closes without error', async () => {
    await adapter.closePayment({ channel: PaymentChannel.STRIPE_CARD, paymentNo: 'NEVER00001' });
    await adapter.closePayment({ channel: PaymentChannel.STRIPE_CARD, paymentNo: 'NEVER00002', providerReference: 'pi_000000000000000000000000' });
  });
});

describe('refunds', () => {
  async function paidPayment(total = 10_000) {
    const req = input({ amount: total });
    const created = await adapter.createPayment(req);
    const confirmed = sim.confirm({ payment_intent: created.providerReference!, outcome: 'SUCCESS', notify: false });
    if (!confirmed.ok) throw new Error('confirm failed');
    return { req, pi: created.providerReference!, charge: confirmed.latest_charge! };
  }
  const refundInput = (p: { req: CreatePaymentInput; pi: string }, refundNo: string, amount: number, over: Partial<RefundInput> = {}): RefundInput => ({
    channel: PaymentChannel.STRIPE_CARD,
    paymentNo: p.req.paymentNo,
    refundNo,
    providerReference: p.pi,
    amount,
    totalAmount: 10_000,
    currency: 'USD',
    reason: 'customer asked',
    notifyUrl: `${origin}/notify/stripe`,
    ...over,
  });

  it('partial then full: SUCCEEDED refunds, refund.created webhooks map to refunds, charge.refunded follows each', async () => {
    sim.setRefundBehaviour('succeeded');
    const p = await paidPayment();
    const r1 = await adapter.refund(refundInput(p, `R1${p.req.paymentNo}`, 3000));
    expect(r1).toMatchObject({ state: 'SUCCEEDED', raw: { object: 'refund', amount: 3000, status: 'succeeded', payment_intent: p.pi } });
    expect(r1.providerRefundId).toMatch(/^re_\w+$/);
    expect(sim.store.findIntent({ payment_intent: p.pi })).toBeDefined();
    const stored = sim.store.account(creds.secretKey)!.refunds.get(r1.providerRefundId!)!;
    expect(stored.metadata).toEqual({ refundNo: `R1${p.req.paymentNo}`, paymentNo: p.req.paymentNo, reason: 'customer asked' });

    // The rest, by charge id this time.
    const r2 = await adapter.refund(refundInput(p, `R2${p.req.paymentNo}`, 7000, { providerReference: null, providerTransactionId: p.charge }));
    expect(r2).toMatchObject({ state: 'SUCCEEDED', raw: { amount: 7000, charge: p.charge } });

    const created = await waitForEvent('main', p.req.paymentNo, 'refund.created', 2);
    const events = await Promise.all(created.map((n) => parsedOk(n)));
    expect(events).toEqual(
      expect.arrayContaining([
        { type: 'refund', status: 'SUCCEEDED', refundNo: `R1${p.req.paymentNo}`, paymentNo: p.req.paymentNo, amount: 3000, providerRefundId: r1.providerRefundId },
        { type: 'refund', status: 'SUCCEEDED', refundNo: `R2${p.req.paymentNo}`, paymentNo: p.req.paymentNo, amount: 7000, providerRefundId: r2.providerRefundId },
      ]),
    );
    const refunded = await waitForEvent('main', p.req.paymentNo, 'charge.refunded', 2);
    const charges = refunded.map((n) => objectOf(n)).sort((a, b) => a.amount_refunded - b.amount_refunded);
    expect(charges.map((c) => [c.id, c.amount_refunded, c.refunded])).toEqual([
      [p.charge, 3000, false],
      [p.charge, 10_000, true],
    ]);
    for (const n of refunded) {
      expect(await parsedOk(n)).toMatchObject({ type: 'ignored', paymentNo: p.req.paymentNo });
    }

    expect(await adapter.queryRefund({ channel: PaymentChannel.STRIPE_CARD, paymentNo: p.req.paymentNo, refundNo: `R1${p.req.paymentNo}`, providerReference: r1.providerRefundId })).toMatchObject({
      state: 'SUCCEEDED',
      providerRefundId: r1.providerRefundId,
    });
    // Without the refund id: by the intent, or by paymentNo alone.
    expect(await adapter.queryRefund({ channel: PaymentChannel.STRIPE_CARD, paymentNo: p.req.paymentNo, refundNo: `R2${p.req.paymentNo}`, providerReference: p.pi })).toMatchObject({ providerRefundId: r2.providerRefundId });
    expect(await adapter.queryRefund({ channel: PaymentChannel.STRIPE_CARD, paymentNo: p.req.paymentNo, refundNo: `R2${p.req.paymentNo}` })).toMatchObject({ providerRefundId: r2.providerRefundId });
    expect((await adapter.queryPayment({ ...p.req, providerReference: p.pi })).state).toBe('SUCCEEDED');

    expect(await rejection(adapter.refund(refundInput(p, `R3${p.req.paymentNo}`, 1)))).toMatchObject({ providerCode: 'charge_already_refunded', httpStatus: 400 });
  });

  it('the same refundNo twice refunds once; another amount under it is refused; more than what remains is refused', async () => {
    const p = await paidPayment();
    const ri = refundInput(p, `RS${p.req.paymentNo}`, 4000);
    const first = await adapter.refund(ri);
    const again = await adapter.refund(ri);
    expect(again.providerRefundId).toBe(first.providerRefundId);
    const account = sim.store.account(creds.secretKey)!;
    expect([...account.refunds.values()].filter((r) => r.payment_intent === p.pi)).toHaveLength(1);
    expect(account.charges.get(p.charge)!.amount_refunded).toBe(4000);

    expect(await rejection(adapter.refund({ ...ri, amount: 3000 }))).toMatchObject({ providerCode: 'idempotency_error' });
    const over = await rejection(adapter.refund(refundInput(p, `RO${p.req.paymentNo}`, 6001)));
    expect(over).toBeInstanceOf(ProviderRejectedError);
    expect(over).toMatchObject({ providerCode: 'amount_too_large', httpStatus: 400 });
  });

  it('scripted: pending then succeeded (refund.updated); failed ends FAILED with refund.failed', async () => {
    const p = await paidPayment();
    const ctl = await postJson('/simulator/stripe/control', { refundBehaviour: 'pending', refundDelayMs: 150 });
    expect(ctl).toMatchObject({ status: 200, body: { refundBehaviour: 'pending', refundDelayMs: 150 } });
    const slow = refundInput(p, `RP${p.req.paymentNo}`, 1000);
    const pending = await adapter.refund(slow);
    expect(pending).toMatchObject({ state: 'PENDING' });
    expect(await adapter.queryRefund({ ...slow, providerReference: pending.providerRefundId })).toMatchObject({ state: 'PENDING' });
    const [updated] = await waitForEvent('main', p.req.paymentNo, 'refund.updated');
    expect(updated.event.data.previous_attributes).toEqual({ status: 'pending' });
    expect(await parsedOk(updated)).toMatchObject({ type: 'refund', status: 'SUCCEEDED', refundNo: slow.refundNo });
    expect(await adapter.queryRefund({ ...slow, providerReference: pending.providerRefundId })).toMatchObject({ state: 'SUCCEEDED' });

    sim.setRefundBehaviour('failed');
    const failing = refundInput(p, `RF${p.req.paymentNo}`, 1000);
    expect(await adapter.refund(failing)).toMatchObject({ state: 'FAILED', raw: { status: 'failed', failure_reason: 'expired_or_canceled_card' } });
    const [failed] = await waitForEvent('main', p.req.paymentNo, 'refund.failed');
    expect(await parsedOk(failed)).toMatchObject({ type: 'refund', status: 'FAILED', refundNo: failing.refundNo, amount: 1000 });
    // A failed refund gives its amount back.
    expect(sim.store.account(creds.secretKey)!.charges.get(p.charge)!.amount_refunded).toBe(1000);

    sim.setRefundBehaviour('pending');
    const stuck = refundInput(p, `RK${p.req.paymentNo}`, 1000);
    const r = await adapter.refund(stuck);
    expect(r.state).toBe('PENDING');
    const settled = await postJson('/simulator/stripe/control', { settleRefund: { refund: r.providerRefundId, status: 'succeeded' } });
    expect(settled.status).toBe(200);
    expect(await adapter.queryRefund({ ...stuck, providerReference: r.providerRefundId })).toMatchObject({ state: 'SUCCEEDED' });
    sim.setRefundBehaviour('succeeded');
  });

  it('refunding an unpaid intent is refused; an unknown refund query is refused', async () => {
    const req = input();
    const created = await adapter.createPayment(req);
    const err = await rejection(adapter.refund(refundInput({ req, pi: created.providerReference! }, `RU${req.paymentNo}`, 100)));
    expect(err).toMatchObject({ providerCode: 'payment_intent_unexpected_state', httpStatus: 400 });
    const ref = { channel: PaymentChannel.STRIPE_CARD, paymentNo: req.paymentNo, refundNo: 'R-NONE' };
    expect(await rejection(adapter.queryRefund(ref))).toMatchObject({ providerCode: 'resource_missing', httpStatus: 404 });
    expect(await rejection(adapter.queryRefund({ ...ref, providerReference: 're_000000000000000000000000' }))).toMatchObject({
      providerCode: 'resource_missing',
      httpStatus: 404,
    });
  });
});

describe('wire compatibility', () => {
  it('lists charges and refunds as balance transactions by created range (stripe-node, auto-pagination)', async () => {
    const before = Math.floor(Date.now() / 1000);
    const txCreds = generateStripeCredentials();
    const txConfig = sim.adapterConfig(txCreds);
    const txAdapter = new StripeProvider(txConfig);
    const req = input({ amount: 2500 });
    const created = await txAdapter.createPayment(req);
    const confirmed = sim.confirm({ payment_intent: created.providerReference!, outcome: 'SUCCESS' });
    const refund = await txAdapter.refund({
      channel: PaymentChannel.STRIPE_CARD,
      paymentNo: req.paymentNo,
      refundNo: `RT${req.paymentNo}`,
      providerReference: created.providerReference,
      amount: 500,
      totalAmount: 2500,
      currency: 'USD',
      notifyUrl: '',
    });

    const stripe = createStripeClient(txConfig);
    const seen: Array<{ type: string; amount: number; net: number; source: unknown }> = [];
    for await (const t of stripe.balanceTransactions.list({ created: { gte: before, lt: before + 3600 }, limit: 1 })) seen.push(t);
    expect(seen.map((t) => [t.type, t.amount, t.net, t.source])).toEqual([
      ['refund', -500, -500, refund.providerRefundId],
      ['charge', 2500, 2500, confirmed.ok && confirmed.latest_charge],
    ]);
    expect(await stripe.balanceTransactions.list({ created: { lt: before } })).toMatchObject({ object: 'list', data: [], has_more: false });
  });

  it('honours Idempotency-Key on the wire: replays, and refuses another endpoint or other parameters', async () => {
    const post = (path: string, body: string, key: string) =>
      fetch(`${sim.baseUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${creds.secretKey}`, 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': key },
        body,
      });
    const key = `k-${paymentNo()}`;
    const body = 'amount=1000&currency=usd&metadata[paymentNo]=X1&payment_method_types[0]=card';
    const a = await post('/v1/payment_intents', body, key);
    const b = await post('/v1/payment_intents', body, key);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(((await b.json()) as { id: string }).id).toBe(((await a.json()) as { id: string }).id);
    const other = await post('/v1/payment_intents', body.replace('1000', '1001'), key);
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ error: { type: 'idempotency_error' } });
    const elsewhere = await post('/v1/refunds', 'payment_intent=pi_x', key);
    expect(await elsewhere.json()).toMatchObject({ error: { type: 'idempotency_error', message: expect.stringContaining('same endpoint') } });
    const unknown = await post('/v1/payment_intents', `${body}&colour=blue`, `k2-${paymentNo()}`);
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'parameter_unknown', param: 'colour' } });
  });

  it('serves search pages, refund lists, charges and events the way stripe-node pages and reads them', async () => {
    const own = generateStripeCredentials();
    const ownConfig = sim.adapterConfig(own);
    const ownAdapter = new StripeProvider(ownConfig);
    const stripe = createStripeClient(ownConfig);
    const reqs = [input({ currency: 'SEK', amount: 5000 }), input({ currency: 'SEK', amount: 6000 }), input({ currency: 'SEK', amount: 7000 })];
    const ids: string[] = [];
    for (const r of reqs) ids.push((await ownAdapter.createPayment(r)).providerReference!);

    const found: string[] = [];
    for await (const pi of stripe.paymentIntents.search({ query: "currency:'sek' AND amount>=6000", limit: 1 })) found.push(pi.id);
    expect(found).toEqual([ids[2], ids[1]]);
    const bad = await rejection(stripe.paymentIntents.search({ query: 'colour:"blue"' }));
    expect(bad).toMatchObject({ type: 'StripeInvalidRequestError', param: 'query' });

    const confirmed = sim.confirm({ payment_intent: ids[0], outcome: 'SUCCESS' });
    const refundIds: string[] = [];
    for (const amount of [1000, 1000, 1000]) {
      refundIds.push((await stripe.refunds.create({ payment_intent: ids[0], amount })).id);
    }
    const listed: string[] = [];
    for await (const r of stripe.refunds.list({ payment_intent: ids[0], limit: 2 })) listed.push(r.id);
    expect(listed).toEqual([...refundIds].reverse());
    const before = await stripe.refunds.list({ payment_intent: ids[0], ending_before: refundIds[0], limit: 1 });
    expect(before).toMatchObject({ data: [{ id: refundIds[1] }], has_more: true });

    const charge = await stripe.charges.retrieve(confirmed.ok ? confirmed.latest_charge! : '', { expand: ['balance_transaction'] });
    expect(charge).toMatchObject({ amount: 5000, amount_refunded: 3000, refunded: false, balance_transaction: { object: 'balance_transaction', amount: 5000 } });
    const evt = sim.events.find((e) => e.type === 'payment_intent.succeeded' && (e.data.object as { id: string }).id === ids[0])!;
    expect(await stripe.events.retrieve(evt.id)).toMatchObject({ id: evt.id, type: 'payment_intent.succeeded' });
    expect(await rejection(stripe.events.retrieve('evt_nope'))).toMatchObject({ code: 'resource_missing', statusCode: 404 });

    const noKey = await fetch(`${sim.baseUrl}/v1/payment_intents/${ids[0]}`);
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ error: { type: 'invalid_request_error', message: expect.stringContaining('You did not provide an API key') } });
    const unknown = await fetch(`${sim.baseUrl}/v1/customers`, { headers: { authorization: `Bearer ${own.secretKey}` } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { message: expect.stringContaining('Unrecognized request URL') } });
  });

  it('accepts an apiBase ending in /v1', async () => {
    const v1 = new StripeProvider({ ...config, apiBase: `${sim.baseUrl}/v1` });
    expect((await v1.createPayment(input())).providerReference).toMatch(/^pi_/);
  });
});

describe('transport failures', () => {
  it('a wrong secret key → ProviderRejectedError authentication_error (401)', async () => {
    const wrong = new StripeProvider({ ...config, secretKey: generateStripeCredentials().secretKey });
    const err = await rejection(wrong.createPayment(input()));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: 'authentication_error', httpStatus: 401 });
    expect((err as Error).message).toMatch(/Invalid API Key provided: sk_test_\*+\w{4}/);
    expect((err as Error).message).not.toContain(config.secretKey);
  });

  it('5xx and refused connections → ProviderNetworkError', async () => {
    expect(await rejection(new StripeProvider({ ...config, apiBase: `${origin}/broken` }).createPayment(input()))).toBeInstanceOf(ProviderNetworkError);
    const port = await closedPort();
    const err = await rejection(new StripeProvider({ ...config, apiBase: `http://127.0.0.1:${port}` }).queryPayment({ ...input(), providerReference: 'pi_x' }));
    expect(err).toBeInstanceOf(ProviderNetworkError);
  });

  it('a server that hangs → ProviderNetworkError within timeoutMs', async () => {
    const started = Date.now();
    const err = await rejection(new StripeProvider({ ...config, apiBase: `${origin}/hang`, timeoutMs: 300 }).createPayment(input()));
    expect(err).toBeInstanceOf(ProviderNetworkError);
    expect((err as Error).message).toMatch(/timeout/);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
