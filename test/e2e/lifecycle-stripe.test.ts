import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { ProviderNetworkError } from '../../src/payments/providers/errors';
import type { StripeSimulator } from '../../src/simulators/stripe';
import type { WirePaymentIntent, WireRefund } from '../../src/simulators/stripe/types';
import { codeOf, type Db, type TestApp } from '../helpers/app';
import { eventually, lifecycleFixture, postJson } from '../helpers/lifecycle';

/**
 * The payment lifecycle (sweep, query fallback, late and duplicate successes, refunds) with Stripe, through
 * STRIPE_CARD (PaymentIntents) and the Stripe simulator, as `payment-lifecycle.test.ts` does for WeChat Pay.
 *
 * What is Stripe's own here: a PaymentIntent never expires, so the sweeper cancels it (`cancellation_reason:
 * abandoned`), and a canceled intent can never be confirmed: Stripe refuses it (`payment_intent_unexpected_state`).
 * So with Stripe alone a success after a close cannot happen, and the tests show that first. The service must still
 * refund one if Stripe ever reports it (as for every provider), so those tests then play Stripe's side of the race
 * the way `payment-lifecycle.test.ts` does for WeChat Pay (`providerSaysPaid`): the intent succeeds at the simulator
 * after it was closed here, and the refund must reach Stripe. Refunds: `pending` first when Stripe takes time, then
 * `succeeded` or `failed` (`refund.updated` / `refund.failed` webhooks).
 */

const PAY = `mutation($input: PayOrderInput!) { payOrder(input: $input) { payment { id paymentNo status } clientSecret qrCodeUrl } }`;
const REFUND = `mutation($input: RefundOrderInput!) { refundOrder(input: $input) { id refundNo amount status reason paymentId } }`;
const ORDER = `query($id: ID!) { order(id: $id) { status paidAmount refundedAmount
  payments { id paymentNo channel status providerTransactionId } refunds { refundNo amount status reason paymentId } history { from to actor reason } } }`;
const NOTIFICATIONS = `{ paymentNotifications(first: 100) { edges { node { provider notificationId paymentNo outcome flagged reason } } } }`;

const databases: Db[] = inject('postgres') ? ['sqlite', 'postgresql'] : ['sqlite'];

describe.each(databases)('payment lifecycle with Stripe (STRIPE_CARD) on %s', (db) => {
  const fx = lifecycleFixture(db);
  const { newOrder, stock, subscribe } = fx;
  let t: TestApp;
  let sim: StripeSimulator;
  let admin: string;
  let alice: string;
  beforeAll(() => {
    ({ t, admin, alice } = fx);
    sim = t.app.providers.simulator.stripe!;
  });
  afterEach(() => sim.setRefundBehaviour('succeeded'));

  interface Session {
    payment: { id: string; paymentNo: string };
    clientSecret: string;
    qrCodeUrl: string;
    /** The PaymentIntent id. */
    pi: string;
  }
  const pay = async (orderId: string, channel = 'STRIPE_CARD'): Promise<Session> => {
    const res = await t.gql(PAY, { input: { orderId, channel } }, alice);
    expect(res.errors).toBeUndefined();
    const s = res.data.payOrder;
    return { ...s, pi: s.clientSecret?.split('_secret_')[0] };
  };
  const order = async (id: string) => (await t.gql(ORDER, { id }, admin)).data.order;
  const intent = (pi: string): WirePaymentIntent => sim.store.findIntent({ payment_intent: pi })!.pi;
  const refundsAtStripe = (pi: string): WireRefund[] => {
    const { account } = sim.store.findIntent({ payment_intent: pi })!;
    return [...account.refunds.values()].filter((r) => r.payment_intent === pi);
  };
  const notificationsOf = async (paymentNo: string) =>
    ((await t.gql(NOTIFICATIONS, {}, admin)).data.paymentNotifications.edges as any[]).map((e) => e.node).filter((n) => n.paymentNo === paymentNo);
  /** The customer confirms the card payment; `notify: false` loses Stripe's webhooks for it. */
  const customerPays = (pi: string, notify = true) => postJson(`${t.url}/simulator/stripe/confirm`, { payment_intent: pi, outcome: 'SUCCESS', notify });
  /**
   * Stripe's side of a race the real Stripe never lets happen (a canceled intent cannot be confirmed): the intent
   * succeeds after we closed it. Played here only to prove the service would still refund such money.
   */
  const stripeSucceedsAfterClose = async (pi: string) => {
    const stored = intent(pi);
    expect(stored.status).toBe('canceled');
    Object.assign(stored, { status: 'requires_payment_method', canceled_at: null, cancellation_reason: null });
    expect((await customerPays(pi)).status).toBe(200);
  };

  it('an unpaid order at its deadline: the intent is canceled at Stripe (it never expires by itself), CANCELLED by system, stock back', async () => {
    const before = await stock();
    const o = await newOrder(2);
    const s = await pay(o.id);
    expect(await stock()).toBe(before - 2);
    const sub = subscribe(o.id);
    const swept = await eventually(() => order(o.id), (x) => x.status === 'CANCELLED');
    expect(swept.history.at(-1)).toMatchObject({ from: 'PAYING', to: 'CANCELLED', actor: 'system', reason: 'payment timeout' });
    expect(swept.payments[0].status).toBe('CLOSED');
    expect(intent(s.pi)).toMatchObject({ status: 'canceled', cancellation_reason: 'abandoned', canceled_at: expect.any(Number) });
    expect(await stock()).toBe(before);
    await sub.until((x) => x.events.some((e) => e.paymentStatusChanged.orderStatus === 'CANCELLED'));
    // Stripe's payment_intent.canceled webhook comes back, verifies, and changes nothing more.
    const seen = await eventually(() => notificationsOf(s.payment.paymentNo), (ns) => ns.length >= 1);
    expect(seen.every((n) => !n.flagged && (n.outcome === 'applied' || n.outcome === 'duplicate'))).toBe(true);
    // The card page can no longer take the payment.
    const late = await customerPays(s.pi);
    expect(late.status).toBe(409);
    expect(await late.json()).toMatchObject({ code: 'payment_intent_unexpected_state' });
  });

  it('paid at Stripe while the sweep cancels it: cancel is refused, the intent succeeded, the order becomes PAID', async () => {
    const o = await newOrder();
    const s = await pay(o.id);
    // Paid, but the webhook never comes and the query fallback is too slow: the sweeper finds it first.
    expect((await customerPays(s.pi, false)).status).toBe(200);
    const swept = await t.app.services.lifecycle.sweepExpiredOrders(new Date(Date.now() + 10_000));
    expect(swept).toEqual({ cancelled: 0, paid: 1 });
    const final = await order(o.id);
    expect(final.status).toBe('PAID');
    expect(final.paidAmount).toBe(o.totalAmount);
    expect(final.payments[0].providerTransactionId).toBe(intent(s.pi).latest_charge);
    expect(final.history.at(-1)).toMatchObject({ to: 'PAID', actor: 'provider:stripe' });
    expect(intent(s.pi).status).toBe('succeeded');
    expect(final.refunds).toEqual([]);
  });

  it('webhook lost: the query fallback finds the succeeded intent and the subscriber sees PAID', async () => {
    const o = await newOrder();
    const sub = subscribe(o.id);
    const s = await pay(o.id);
    expect((await customerPays(s.pi, false)).status).toBe(200);
    await sub.until((x) => x.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'), 4000);
    const final = await order(o.id);
    expect(final.history.at(-1)).toMatchObject({ to: 'PAID', actor: 'system' });
    const succeeded = sim.events.filter((e) => e.type === 'payment_intent.succeeded' && (e.data.object as { id?: string }).id === s.pi);
    expect(succeeded).toHaveLength(1);
    expect(sim.notifications.filter((n) => n.notificationId === succeeded[0]!.id)).toEqual([]);
    expect(await notificationsOf(s.payment.paymentNo)).toEqual([]);
  });

  it('admin syncPayment asks Stripe at once', async () => {
    const o = await newOrder();
    const s = await pay(o.id);
    expect(sim.confirm({ payment_intent: s.pi, outcome: 'SUCCESS', notify: false }).ok).toBe(true);
    const res = await t.gql(`mutation($id: ID!) { syncPayment(paymentId: $id) { status providerTransactionId } }`, { id: s.payment.id }, admin);
    expect(res.data.syncPayment).toMatchObject({ status: 'SUCCEEDED', providerTransactionId: intent(s.pi).latest_charge });
    expect((await order(o.id)).status).toBe('PAID');
  });

  it('after cancelOrder the intent is canceled at Stripe: a late confirmation is refused and no money moves', async () => {
    const o = await newOrder();
    const s = await pay(o.id);
    const cancelled = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status payments { status } } }`, { id: o.id }, alice);
    expect(cancelled.data.cancelOrder).toMatchObject({ status: 'CANCELLED', payments: [{ status: 'CLOSED' }] });
    expect(intent(s.pi).status).toBe('canceled');
    const late = await customerPays(s.pi);
    expect(late.status).toBe(409);
    expect(intent(s.pi).latest_charge).toBeNull();
    const final = await order(o.id);
    expect(final).toMatchObject({ status: 'CANCELLED', refunds: [], payments: [expect.objectContaining({ status: 'CLOSED' })] });
  });

  it('paid after close: a success Stripe reports for a payment closed here is refunded at Stripe; the order stays CANCELLED', async () => {
    const before = await stock();
    const o = await newOrder();
    const s = await pay(o.id);
    expect((await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id: o.id }, alice)).data.cancelOrder.status).toBe('CANCELLED');
    await stripeSucceedsAfterClose(s.pi);
    const final = await eventually(() => order(o.id), (x) => x.refunds.length === 1 && x.refunds[0].status === 'SUCCEEDED');
    expect(final.status).toBe('CANCELLED');
    expect(final.history.filter((h: any) => h.to === 'PAID')).toEqual([]);
    expect(final.payments).toEqual([expect.objectContaining({ id: s.payment.id, status: 'SUCCEEDED' })]);
    expect(final.refunds[0]).toMatchObject({ amount: o.totalAmount, reason: 'paid after close', paymentId: s.payment.id });
    expect(final).toMatchObject({ refundedAmount: 0, paidAmount: 0 });
    expect(await stock()).toBe(before);
    expect(refundsAtStripe(s.pi)).toEqual([
      expect.objectContaining({ amount: o.totalAmount, status: 'succeeded', metadata: expect.objectContaining({ refundNo: final.refunds[0].refundNo }) }),
    ]);
  });

  it('second channel: switching to WeChat Pay cancels the intent first; a success Stripe reports anyway is refunded (duplicate payment)', async () => {
    const o = await newOrder();
    const card = await pay(o.id, 'STRIPE_CARD');
    const wechat = await pay(o.id, 'WECHAT_NATIVE'); // cancels the PaymentIntent at Stripe first
    expect(intent(card.pi).status).toBe('canceled');
    expect((await postJson(`${t.url}/simulator/wechatpay/pay`, { code_url: wechat.qrCodeUrl, outcome: 'SUCCESS' })).status).toBe(200);
    await eventually(() => order(o.id), (x) => x.status === 'PAID');
    // What the real Stripe does with the first tab's card form: refuses it.
    expect((await customerPays(card.pi)).status).toBe(409);

    await stripeSucceedsAfterClose(card.pi);
    const final = await eventually(() => order(o.id), (x) => x.refunds.some((r: any) => r.status === 'SUCCEEDED'));
    expect(final.status).toBe('PAID');
    expect(final).toMatchObject({ paidAmount: o.totalAmount, refundedAmount: 0 });
    expect(final.refunds).toEqual([expect.objectContaining({ amount: o.totalAmount, reason: 'duplicate payment', paymentId: card.payment.id })]);
    expect(final.history.filter((h: any) => h.to === 'PAID')).toHaveLength(1);
    expect(refundsAtStripe(card.pi)).toEqual([
      expect.objectContaining({ amount: o.totalAmount, status: 'succeeded', metadata: expect.objectContaining({ refundNo: final.refunds[0].refundNo }) }),
    ]);
  });

  it('cancelOrder on a PAYING order that was paid at Stripe answers ALREADY_PAID and the order is PAID', async () => {
    const o = await newOrder();
    const s = await pay(o.id);
    expect(sim.confirm({ payment_intent: s.pi, outcome: 'SUCCESS', notify: false }).ok).toBe(true);
    const res = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id: o.id }, alice);
    expect(codeOf(res)).toBe('ALREADY_PAID');
    const final = await order(o.id);
    expect(final.status).toBe('PAID');
    expect(final.refunds).toEqual([]);
    expect(intent(s.pi).status).toBe('succeeded');
  });

  describe('refunds', () => {
    const paidOrder = async (quantity = 1) => {
      const o = await newOrder(quantity);
      const s = await pay(o.id);
      expect((await customerPays(s.pi)).status).toBe(200);
      await eventually(() => order(o.id), (x) => x.status === 'PAID');
      return { ...o, pi: s.pi };
    };
    const refund = (input: Record<string, unknown>) => t.gql(REFUND, { input }, admin);

    it('partial refunds up to the paid amount, then REFUND_EXCEEDS_PAID; the last one makes the order REFUNDED and restocks', async () => {
      const before = await stock();
      const o = await paidOrder(2);
      expect(await stock()).toBe(before - 2);
      const sub = subscribe(o.id);
      const first = await refund({ orderId: o.id, amount: 5000, reason: 'damaged box' });
      expect(first.data.refundOrder).toMatchObject({ amount: 5000, status: 'SUCCEEDED', reason: 'damaged box' });
      expect(codeOf(await refund({ orderId: o.id, amount: o.totalAmount }))).toBe('REFUND_EXCEEDS_PAID');
      expect(await order(o.id)).toMatchObject({ status: 'PAID', refundedAmount: 5000 });
      const rest = await refund({ orderId: o.id });
      expect(rest.data.refundOrder).toMatchObject({ amount: o.totalAmount - 5000, status: 'SUCCEEDED' });
      expect(await order(o.id)).toMatchObject({ status: 'REFUNDED', refundedAmount: o.totalAmount });
      expect(await stock()).toBe(before);
      expect(codeOf(await refund({ orderId: o.id, amount: 1 }))).toBe('REFUND_EXCEEDS_PAID');
      await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'REFUNDED' && e.paymentStatusChanged.refundedAmount === o.totalAmount));
      expect(refundsAtStripe(o.pi).map((r) => [r.metadata.refundNo, r.amount, r.status]).sort()).toEqual(
        [
          [first.data.refundOrder.refundNo, 5000, 'succeeded'],
          [rest.data.refundOrder.refundNo, o.totalAmount - 5000, 'succeeded'],
        ].sort(),
      );
    });

    it('two admins refunding the rest at the same moment: one succeeds, the other REFUND_EXCEEDS_PAID', async () => {
      const o = await paidOrder();
      const results = await Promise.all([refund({ orderId: o.id }), refund({ orderId: o.id })]);
      const outcomes = results.map((r) => r.data?.refundOrder?.status ?? codeOf(r)).sort();
      expect(outcomes).toEqual(['REFUND_EXCEEDS_PAID', 'SUCCEEDED']);
      expect(await order(o.id)).toMatchObject({ status: 'REFUNDED', refundedAmount: o.totalAmount });
      expect(refundsAtStripe(o.pi)).toHaveLength(1);
    });

    it('a refund Stripe keeps pending answers PENDING, then settles by the refund.updated webhook', async () => {
      const o = await paidOrder();
      sim.setRefundBehaviour('succeeded', 1500);
      const r = (await refund({ orderId: o.id, amount: 300 })).data.refundOrder;
      expect(r.status).toBe('PENDING');
      expect((await order(o.id)).refundedAmount).toBe(0);
      expect(refundsAtStripe(o.pi)).toEqual([expect.objectContaining({ status: 'pending', metadata: expect.objectContaining({ refundNo: r.refundNo }) })]);
      const final = await eventually(() => order(o.id), (x) => x.refunds[0].status === 'SUCCEEDED' && x.refundedAmount === 300);
      expect(final.status).toBe('PAID');
      expect(refundsAtStripe(o.pi)).toEqual([expect.objectContaining({ status: 'succeeded' })]);
    });

    it('a refund that ends failed at Stripe (refund.failed) is FAILED and refunds nothing', async () => {
      const o = await paidOrder();
      sim.setRefundBehaviour('failed', 500);
      const r = (await refund({ orderId: o.id, amount: 300 })).data.refundOrder;
      expect(r.status).toBe('PENDING');
      const final = await eventually(() => order(o.id), (x) => x.refunds[0].status !== 'PENDING');
      expect(final.refunds[0].status).toBe('FAILED');
      expect(final).toMatchObject({ status: 'PAID', refundedAmount: 0 });
      expect(refundsAtStripe(o.pi)).toEqual([expect.objectContaining({ status: 'failed', failure_reason: expect.any(String) })]);
    });

    it('a refund whose Stripe call timed out is retried with the same refund number and refunds once', async () => {
      const o = await paidOrder();
      const provider = t.app.services.payments.provider('default', 'STRIPE_CARD' as never);
      const original = provider.refund.bind(provider);
      let calls = 0;
      // The request reaches Stripe, but the answer is lost: exactly what a timeout looks like from here.
      provider.refund = async (input) => {
        calls++;
        await original(input);
        if (calls === 1) throw new ProviderNetworkError('Stripe create Refund failed: timeout', 'stripe');
        return original(input);
      };
      try {
        const r = (await refund({ orderId: o.id, amount: 400 })).data.refundOrder;
        expect(r.status).toBe('PENDING');
        const final = await eventually(() => order(o.id), (x) => x.refunds[0].status === 'SUCCEEDED' && x.refundedAmount === 400);
        expect(final.refunds).toHaveLength(1);
        const atStripe = refundsAtStripe(o.pi);
        expect(atStripe).toHaveLength(1);
        expect(atStripe[0]).toMatchObject({ amount: 400, status: 'succeeded', metadata: expect.objectContaining({ refundNo: r.refundNo }) });
      } finally {
        provider.refund = original;
      }
    });
  });
});
