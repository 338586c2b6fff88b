import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { StripeSimulator } from '../../src/simulators/stripe';
import type { TestApp } from '../helpers/app';
import { appFixture } from '../helpers/lifecycle';
import { TEST_REDIS_URL } from '../helpers/services';

/**
 * Stripe webhooks (`POST /notify/stripe`) against the real server: every rejected-callback case of the WeChat issue
 * adapted to Stripe, deduplication on the event id, and out-of-order delivery. Every event here is signed by
 * stripe-node's own test signer (`Stripe.webhooks.generateTestHeaderString`) with the endpoint secret the simulator
 * registered for the service's account, an independent peer for the service's `constructEvent` verification.
 */

const PAY = `mutation($input: PayOrderInput!) { payOrder(input: $input) {
  payment { id paymentNo channel status amount currency } clientSecret } }`;
const API_VERSION = '2026-02-25.clover';
const now = () => Math.floor(Date.now() / 1000);
const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

interface WebhookEvent {
  id: string;
  type: string;
  created: number;
  livemode: boolean;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
  [key: string]: unknown;
}

function event(type: string, object: Record<string, unknown>, over: Partial<WebhookEvent> = {}): WebhookEvent {
  return {
    id: id('evt'),
    object: 'event',
    api_version: API_VERSION,
    created: now(),
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    ...over,
  };
}

const setups: Array<[string, 'sqlite' | 'postgresql', Record<string, string>]> = [['SQLite', 'sqlite', {}]];
if (inject('postgres')) setups.push(['PostgreSQL', 'postgresql', inject('redis') ? { REDIS_URL: TEST_REDIS_URL } : {}]);

describe.each(setups)('Stripe webhooks on %s (POST /notify/stripe)', (_name, db, env) => {
  const fx = appFixture(db, { env: { SIMULATOR_TIME_SCALE: '1000', ...env }, priceAmount: 12800, stock: 1000 });
  const { subscribe } = fx;
  let t: TestApp;
  let sim: StripeSimulator;
  let admin: string;
  let alice: string;
  /** The webhook endpoint secret the service verifies with (registered by the app at the simulator). */
  let secret: string;
  beforeAll(() => {
    ({ t, admin, alice } = fx);
    sim = t.app.providers.simulator.stripe!;
  });

  /** An order paid with STRIPE_CARD through payOrder: PENDING payment, a PaymentIntent at the simulator. */
  const payingOrder = async () => {
    const order = await fx.newOrder();
    const res = await t.gql(PAY, { input: { orderId: order.id, channel: 'STRIPE_CARD' } }, alice);
    expect(res.errors).toBeUndefined();
    const session = res.data.payOrder;
    expect(session.payment).toMatchObject({ status: 'PENDING', amount: order.totalAmount, currency: 'CNY' });
    const piId = (session.clientSecret as string).split('_secret_')[0]!;
    const found = sim.store.findIntent({ payment_intent: piId })!;
    expect(found.pi.metadata).toMatchObject({ paymentNo: session.payment.paymentNo });
    secret = found.account.webhookSecrets[0]!;
    return { order, paymentNo: session.payment.paymentNo as string, piId, intent: structuredClone(found.pi) as unknown as Record<string, unknown> };
  };
  type Paying = Awaited<ReturnType<typeof payingOrder>>;

  const orderState = async (orderId: string) =>
    (
      await t.gql(
        `query($id: ID!) { order(id: $id) { status paidAmount refundedAmount payments { paymentNo status providerTransactionId }
          refunds { refundNo amount status reason } history { from to actor } } }`,
        { id: orderId },
        admin,
      )
    ).data.order;
  const notifications = async (): Promise<any[]> => {
    const rows: any[] = [];
    let after: string | null = null;
    for (;;) {
      const res: any = await t.gql(
        `query($after: String) { paymentNotifications(first: 100, after: $after) {
          edges { node { provider notificationId paymentNo outcome flagged reason } } pageInfo { hasNextPage endCursor } } }`,
        { after },
        admin,
      );
      expect(res.errors).toBeUndefined();
      rows.push(...res.data.paymentNotifications.edges.map((e: any) => e.node));
      if (!res.data.paymentNotifications.pageInfo.hasNextPage) return rows;
      after = res.data.paymentNotifications.pageInfo.endCursor;
    }
  };
  const payload = (evt: WebhookEvent) => JSON.stringify(evt, null, 2);
  const header = (body: string, over: { secret?: string; timestamp?: number } = {}) =>
    Stripe.webhooks.generateTestHeaderString({ payload: body, secret: over.secret ?? secret, timestamp: over.timestamp ?? now() });
  const post = (body: string, signature?: string) =>
    fetch(`${t.url}/notify/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', ...(signature !== undefined ? { 'stripe-signature': signature } : {}) },
      body,
    });
  /** Signs (stripe-node's test signer) and posts. */
  const deliver = (evt: WebhookEvent) => {
    const body = payload(evt);
    return post(body, header(body));
  };
  const succeededIntent = (p: Paying, over: Record<string, unknown> = {}) => ({
    ...p.intent,
    status: 'succeeded',
    amount_received: p.intent.amount,
    latest_charge: 'ch_e2e000000000000000000001',
    ...over,
  });
  const expectRefused = async (res: Response, what: string) => {
    expect(res.status, what).toBe(400);
    expect(await res.text(), what).not.toContain('received');
  };
  const expectReceived = async (res: Response, what = '') => {
    expect(res.status, what).toBe(200);
    expect(await res.json(), what).toEqual({ received: true });
  };

  describe('callbacks for an order paid with STRIPE_CARD (payment PENDING)', () => {
    let p: Paying;

    beforeAll(async () => {
      p = await payingOrder();
    });

    it('forged, tampered, stale, future-dated and unsigned webhooks are refused with 400, change nothing and are kept as rejected', async () => {
      const body = payload(event('payment_intent.succeeded', succeededIntent(p)));
      const cases: Array<[string, string, string | undefined]> = [
        ['another endpoint secret', body, header(body, { secret: 'whsec_someoneElsesEndpointSecret000000' })],
        ['tampered amount after signing', body.replace(`"amount_received": ${p.order.totalAmount}`, '"amount_received": 1'), header(body)],
        ['re-serialized body (not the signed bytes)', JSON.stringify(JSON.parse(body)), header(body)],
        ['stale: 301 s old', body, header(body, { timestamp: now() - 301 })],
        // 310, not 301: the cases are signed before the first is sent, and a second may pass before this one is checked.
        ['dated 310 s in the future', body, header(body, { timestamp: now() + 310 })],
        ['no Stripe-Signature', body, undefined],
        ['no v1 signature', body, `t=${now()}`],
        ['v0 scheme only', body, header(body).replace('v1=', 'v0=')],
        ['signed, but not JSON', 'not json', header('not json')],
      ];
      for (const [what, raw, signature] of cases) await expectRefused(await post(raw, signature), what);

      const state = await orderState(p.order.id);
      expect(state.status).toBe('PAYING');
      expect(state.payments).toEqual([expect.objectContaining({ paymentNo: p.paymentNo, status: 'PENDING', providerTransactionId: null })]);
      const rejected = (await notifications()).filter((x) => x.provider === 'stripe' && x.outcome === 'rejected');
      expect(rejected).toHaveLength(cases.length);
      expect(rejected.every((r) => !r.flagged && r.reason)).toBe(true);
      expect(rejected.map((r) => r.reason)).toEqual(
        expect.arrayContaining([
          'missing Stripe-Signature header',
          'signature verification failed: timestamp too far in the future',
          expect.stringMatching(/^signature verification failed: Timestamp outside the tolerance zone/),
        ]),
      );
    });

    it('verified but mismatched (amount, currency, livemode, connected account, unknown order) is flagged and changes nothing', async () => {
      const cases: Array<[WebhookEvent, string]> = [
        [event('payment_intent.succeeded', succeededIntent(p, { amount_received: p.order.totalAmount - 1 })), 'amount'],
        [event('payment_intent.succeeded', succeededIntent(p, { currency: 'usd' })), 'currency'],
        [event('payment_intent.succeeded', succeededIntent(p), { livemode: true }), 'livemode'],
        [event('payment_intent.succeeded', succeededIntent(p), { account: 'acct_1OtherAccount0000' }), 'connected account'],
        [event('payment_intent.succeeded', succeededIntent(p, { metadata: { paymentNo: 'P00000000000000000000000000' } })), 'unknown payment'],
      ];
      for (const [evt] of cases) await expectRefused(await deliver(evt), evt.id);
      const state = await orderState(p.order.id);
      expect(state.status).toBe('PAYING');
      expect(state.payments[0].status).toBe('PENDING');
      const rows = (await notifications()).filter((x) => cases.some(([evt]) => evt.id === x.notificationId));
      expect(rows).toHaveLength(cases.length);
      expect(rows.every((r) => r.outcome === 'flagged' && r.flagged)).toBe(true);
      for (const [evt, reason] of cases) expect(rows.find((r) => r.notificationId === evt.id)?.reason).toContain(reason);
    });

    it('10 concurrent copies of one event (same id, each freshly signed): all 200, one transition into PAID, one event, one applied row', async () => {
      const sub = subscribe(p.order.id);
      await sub.until((s) => s.events.length >= 1);
      const evt = event('payment_intent.succeeded', succeededIntent(p));
      const body = payload(evt);
      const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => post(body, header(body, { timestamp: now() - i }))));
      expect(replies.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(await Promise.all(replies.map((r) => r.json()))).toEqual(Array(10).fill({ received: true }));

      await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'));
      await new Promise((r) => setTimeout(r, 300));
      const paid = sub.events.filter((e) => e.paymentStatusChanged.orderStatus === 'PAID');
      expect(paid).toHaveLength(1);
      expect(paid[0].paymentStatusChanged).toMatchObject({ paymentNo: p.paymentNo, paymentStatus: 'SUCCEEDED', channel: 'STRIPE_CARD', paidAmount: p.order.totalAmount });

      const state = await orderState(p.order.id);
      expect(state).toMatchObject({ status: 'PAID', paidAmount: p.order.totalAmount });
      expect(state.payments[0]).toMatchObject({ status: 'SUCCEEDED', providerTransactionId: 'ch_e2e000000000000000000001' });
      expect(state.history.filter((h: any) => h.to === 'PAID')).toEqual([expect.objectContaining({ from: 'PAYING', actor: 'provider:stripe' })]);
      const rows = (await notifications()).filter((x) => x.notificationId === evt.id);
      expect(rows.filter((r) => r.outcome === 'applied')).toHaveLength(1);
      expect(rows.filter((r) => r.outcome === 'duplicate')).toHaveLength(9);

      // The same event id again later, freshly signed: acknowledged, nothing more changes.
      await expectReceived(await post(body, header(body)));
      expect((await notifications()).filter((x) => x.notificationId === evt.id)).toHaveLength(11);
    });

    it('while the endpoint secret rolls, a header with several v1 signatures is accepted when one of them is right', async () => {
      const evt = event('customer.created', { id: id('cus'), object: 'customer' });
      const body = payload(evt);
      const good = header(body);
      const t0 = good.split(',')[0]!;
      const other = header(body, { secret: 'whsec_theOldSecretThatWasRolledAway0000', timestamp: Number(t0.slice(2)) }).split(',')[1]!;
      await expectReceived(await post(body, `${t0},${other},${good.split(',')[1]}`), 'two v1');
      await expectRefused(await post(body, `${t0},${other}`), 'only the old secret');
      const rows = (await notifications()).filter((x) => x.notificationId === evt.id);
      expect(rows).toEqual([expect.objectContaining({ outcome: 'applied', flagged: false, reason: expect.stringContaining('customer.created') })]);
    });

    it('out of order: payment_failed and canceled delivered after succeeded never undo PAID', async () => {
      const older = now() - 120;
      const declined = {
        ...p.intent,
        status: 'requires_payment_method',
        amount_received: 0,
        latest_charge: 'ch_e2e000000000000000000000',
        last_payment_error: { type: 'card_error', code: 'card_declined', message: 'Your card was declined.' },
      };
      const late = [
        event('payment_intent.payment_failed', declined, { created: older }),
        event('payment_intent.canceled', { ...p.intent, status: 'canceled', amount_received: 0 }, { created: older }),
        event('payment_intent.succeeded', succeededIntent(p)),
        event('charge.refunded', { id: 'ch_e2e000000000000000000001', object: 'charge', amount: p.order.totalAmount, metadata: { paymentNo: p.paymentNo } }),
      ];
      for (const evt of late) await expectReceived(await deliver(evt), evt.type);
      const state = await orderState(p.order.id);
      expect(state).toMatchObject({ status: 'PAID', paidAmount: p.order.totalAmount, refundedAmount: 0, refunds: [] });
      expect(state.payments).toEqual([expect.objectContaining({ status: 'SUCCEEDED', providerTransactionId: 'ch_e2e000000000000000000001' })]);
      expect(state.history.map((h: any) => h.to)).toEqual(['PENDING_PAYMENT', 'PAYING', 'PAID']);
      const rows = (await notifications()).filter((x) => late.some((e) => e.id === x.notificationId));
      expect(rows).toHaveLength(late.length);
      expect(rows.every((r) => !r.flagged && (r.outcome === 'duplicate' || r.outcome === 'applied'))).toBe(true);
    });
  });

  describe('Stripe rules with payments made at the simulator', () => {
    /** Pays at the simulator's card page (the simulator delivers its own events) and waits for PAID. */
    const paidOrder = async () => {
      const p = await payingOrder();
      expect(sim.confirm({ payment_intent: p.piId, outcome: 'SUCCESS' })).toMatchObject({ ok: true, status: 'succeeded' });
      await until(async () => (await orderState(p.order.id)).status === 'PAID');
      return p;
    };

    it('out of order: refund.updated (succeeded) before refund.created (pending) settles the refund once and never un-settles it', async () => {
      const p = await paidOrder();
      sim.setRefundBehaviour('pending');
      let refundNo: string;
      try {
        const res = await t.gql(
          `mutation($input: RefundOrderInput!) { refundOrder(input: $input) { refundNo amount status } }`,
          { input: { orderId: p.order.id, reason: 'requested_by_customer' } },
          admin,
        );
        expect(res.errors).toBeUndefined();
        expect(res.data.refundOrder).toMatchObject({ amount: p.order.totalAmount, status: 'PENDING' });
        refundNo = res.data.refundOrder.refundNo;
      } finally {
        sim.setRefundBehaviour('succeeded');
      }
      const account = sim.store.findIntent({ payment_intent: p.piId })!.account;
      const wire = [...account.refunds.values()].find((r) => (r.metadata as Record<string, string>).refundNo === refundNo)!;
      expect(wire).toMatchObject({ status: 'pending', amount: p.order.totalAmount });
      const pendingRefund = structuredClone(wire) as unknown as Record<string, unknown>;
      const created = event('refund.created', pendingRefund, { created: now() - 60 });
      const updated = event('refund.updated', {}, { data: { object: { ...pendingRefund, status: 'succeeded' }, previous_attributes: { status: 'pending' } } });

      await expectReceived(await deliver(updated), 'refund.updated');
      await expectReceived(await deliver(created), 'refund.created');
      await expectReceived(await deliver(updated), 'refund.updated again');
      const state = await orderState(p.order.id);
      expect(state).toMatchObject({ status: 'REFUNDED', paidAmount: p.order.totalAmount, refundedAmount: p.order.totalAmount });
      expect(state.refunds).toEqual([expect.objectContaining({ refundNo, status: 'SUCCEEDED', amount: p.order.totalAmount })]);
      expect(state.history.map((h: any) => h.to)).toEqual(['PENDING_PAYMENT', 'PAYING', 'PAID', 'REFUNDED']);
      const rows = (await notifications()).filter((x) => x.notificationId === updated.id || x.notificationId === created.id);
      expect(rows.filter((r) => r.notificationId === updated.id).map((r) => r.outcome).sort()).toEqual(['applied', 'duplicate']);
      expect(rows.filter((r) => r.notificationId === created.id).map((r) => r.outcome)).toEqual(['duplicate']);

      // A refund event with an amount other than the refund's is flagged.
      const wrong = event('refund.updated', { ...pendingRefund, status: 'succeeded', amount: 1 });
      await expectRefused(await deliver(wrong), 'refund amount');
      expect((await notifications()).find((x) => x.notificationId === wrong.id)).toMatchObject({ outcome: 'flagged', reason: expect.stringContaining('refund amount') });
    });

    // Regression: payment_intent.payment_failed reports one declined attempt and the intent stays payable, so a later
    // success of that FAILED payment must go into the still-live order (not be refunded as "paid after close").
    it('a card declined first, then paid on the same PaymentIntent: the order is PAID and nothing is refunded', async () => {
      const p = await payingOrder();
      expect(sim.confirm({ payment_intent: p.piId, outcome: 'FAIL' })).toMatchObject({ ok: true, status: 'requires_payment_method' });
      await until(() => sim.notifications.some((a) => a.label === 'payment_intent.payment_failed' && a.acknowledged && isFor(a, p)));
      expect(sim.confirm({ payment_intent: p.piId, outcome: 'SUCCESS' })).toMatchObject({ ok: true, status: 'succeeded' });
      await until(() => sim.notifications.some((a) => a.label === 'payment_intent.succeeded' && a.acknowledged && isFor(a, p)));
      await new Promise((r) => setTimeout(r, 300));

      const state = await orderState(p.order.id);
      expect(state.refunds).toEqual([]);
      expect(state).toMatchObject({ status: 'PAID', paidAmount: p.order.totalAmount });
      expect(state.payments).toEqual([expect.objectContaining({ paymentNo: p.paymentNo, status: 'SUCCEEDED' })]);
    });

    // Regression: a verified refund event is matched by refundNo and must also name the refund's own payment.
    it('a refund event naming another payment than the refund\'s (metadata.paymentNo) is flagged and changes nothing', async () => {
      const a = await paidOrder();
      const b = await payingOrder();
      sim.setRefundBehaviour('pending');
      let refundNo: string;
      try {
        const res = await t.gql(
          `mutation($input: RefundOrderInput!) { refundOrder(input: $input) { refundNo status } }`,
          { input: { orderId: a.order.id } },
          admin,
        );
        expect(res.errors).toBeUndefined();
        refundNo = res.data.refundOrder.refundNo;
      } finally {
        sim.setRefundBehaviour('succeeded');
      }
      const wire = [...sim.store.findIntent({ payment_intent: a.piId })!.account.refunds.values()].find(
        (r) => (r.metadata as Record<string, string>).refundNo === refundNo,
      )!;
      const crossed = event('refund.updated', {
        ...(structuredClone(wire) as unknown as Record<string, unknown>),
        status: 'succeeded',
        payment_intent: b.piId,
        metadata: { refundNo, paymentNo: b.paymentNo },
      });
      await expectRefused(await deliver(crossed), 'refund of another payment');
      expect((await notifications()).find((x) => x.notificationId === crossed.id)).toMatchObject({ outcome: 'flagged', flagged: true });
      const state = await orderState(a.order.id);
      expect(state).toMatchObject({ status: 'PAID', refundedAmount: 0 });
      expect(state.refunds).toEqual([expect.objectContaining({ refundNo, status: 'PENDING' })]);
    });
  });

  /** Whether a simulator delivery attempt was about `p`'s PaymentIntent. */
  function isFor(attempt: { notificationId: string }, p: Paying): boolean {
    const evt = sim.events.find((e) => e.id === attempt.notificationId);
    return (evt?.data.object as { id?: string } | undefined)?.id === p.piId;
  }
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
