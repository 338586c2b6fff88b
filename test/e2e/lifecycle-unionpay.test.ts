import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { ProviderNetworkError } from '../../src/payments/providers/errors';
import type { UnionPaySimulator } from '../../src/simulators/unionpay';
import type { StoredConsume, StoredRefund } from '../../src/simulators/unionpay/store';
import { codeOf, type Db, type TestApp } from '../helpers/app';
import { eventually, lifecycleFixture, postJson } from '../helpers/lifecycle';

/**
 * The payment lifecycle (sweep, query fallback, late and duplicate successes, refunds) with UnionPay, through
 * UNIONPAY_QR (申请消费二维码) and the UnionPay simulator, as `payment-lifecycle.test.ts` does for WeChat Pay.
 *
 * What is UnionPay's own here: ACP has no "close" for an unpaid consume. Every consume is sent with `payTimeout` =
 * the order's deadline, after which UnionPay refuses to take it; "closing" asks UnionPay (queryTrans) that it was not
 * paid. Until `payTimeout` the QR code stays payable, so a success after the order was cancelled is real here too
 * ("paid after close"). Refunds are asynchronous: `backTransReq.do` answers 00 (accepted) and the result comes by
 * notification (or query): a refund can stay in progress (`origRespCode=05`) and can end failed (`respCode=01`).
 */

const PAY = `mutation($input: PayOrderInput!) { payOrder(input: $input) { payment { id paymentNo status } qrCodeUrl redirectUrl } }`;
const REFUND = `mutation($input: RefundOrderInput!) { refundOrder(input: $input) { id refundNo amount status reason paymentId } }`;
const ORDER = `query($id: ID!) { order(id: $id) { status paidAmount refundedAmount expiresAt
  payments { id paymentNo channel status providerTransactionId } refunds { refundNo amount status reason paymentId } history { from to actor reason } } }`;
const NOTIFICATIONS = `{ paymentNotifications(first: 100) { edges { node { provider paymentNo outcome flagged reason } } } }`;

/** What the browser does with UNIONPAY_GATEWAY's redirectUrl: our page auto-submits a signed form to the gateway. */
async function submitUnionPayFrontForm(redirectUrl: string): Promise<void> {
  const page = await fetch(redirectUrl);
  expect(page.status).toBe(200);
  const html = await page.text();
  const action = /<form[^>]*action="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&');
  const unescape = (v: string) => v.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  const fields = [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map(([, k, v]) => [unescape(k!), unescape(v!)]);
  const cashier = await fetch(action, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
  expect(cashier.status).toBe(200);
}

const databases: Db[] = inject('postgres') ? ['sqlite', 'postgresql'] : ['sqlite'];

describe.each(databases)('payment lifecycle with UnionPay (UNIONPAY_QR) on %s', (db) => {
  const fx = lifecycleFixture(db);
  const { newOrder, stock, subscribe } = fx;
  let t: TestApp;
  let sim: UnionPaySimulator;
  let admin: string;
  let alice: string;
  beforeAll(() => {
    ({ t, admin, alice } = fx);
    sim = t.app.providers.simulator.unionpay!;
  });
  afterEach(() => sim.setRefundBehaviour('success'));

  const pay = async (orderId: string, channel = 'UNIONPAY_QR', extra: Record<string, unknown> = {}) => {
    const res = await t.gql(PAY, { input: { orderId, channel, clientIp: '203.0.113.9', ...extra } }, alice);
    expect(res.errors).toBeUndefined();
    return res.data.payOrder as { payment: { id: string; paymentNo: string }; qrCodeUrl: string; redirectUrl: string };
  };
  const order = async (id: string) => (await t.gql(ORDER, { id }, admin)).data.order;
  const consume = (paymentNo: string): StoredConsume => sim.store.findConsume({ orderId: paymentNo })!;
  const refundsAtUnionPay = (paymentNo: string): StoredRefund[] => sim.store.refundsOf(consume(paymentNo));
  const notificationsOf = async (paymentNo: string) =>
    ((await t.gql(NOTIFICATIONS, {}, admin)).data.paymentNotifications.edges as any[]).map((e) => e.node).filter((n) => n.paymentNo === paymentNo);
  /** The customer pays in 云闪付; `notify: false` loses UnionPay's back notification. */
  const customerPays = (paymentNo: string, notify = true) => postJson(`${t.url}/simulator/unionpay/pay`, { orderId: paymentNo, outcome: 'SUCCESS', notify });

  it('an unpaid order at its deadline: UnionPay confirms it unpaid and its payTimeout ends the QR; CANCELLED by system, stock back', async () => {
    const before = await stock();
    const o = await newOrder(2);
    const { payment } = await pay(o.id);
    expect(await stock()).toBe(before - 2);
    const sub = subscribe(o.id);
    // UnionPay cannot close a consume: the QR carries the order's deadline as payTimeout instead.
    const { expiresAt } = await order(o.id);
    expect(consume(payment.paymentNo).payTimeoutAt).toBe(Math.floor(Date.parse(expiresAt) / 1000) * 1000);

    const swept = await eventually(() => order(o.id), (x) => x.status === 'CANCELLED');
    expect(swept.history.at(-1)).toMatchObject({ from: 'PAYING', to: 'CANCELLED', actor: 'system', reason: 'payment timeout' });
    // payTimeout is whole seconds (YYYYMMDDhhmmss), so UnionPay stops taking the payment up to a second before the
    // order's deadline; a query in that second reads origRespCode 01 (交易失败：订单已超时), which the adapter reports as
    // FAILED, before the sweeper "closes" it (CLOSED). Either way it can no longer be paid.
    expect(['CLOSED', 'FAILED']).toContain(swept.payments[0].status);
    expect(await stock()).toBe(before);
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'CANCELLED'));
    // What UnionPay's side shows: the consume is past payTimeout and can no longer be paid.
    expect(consume(payment.paymentNo).state).toBe('EXPIRED');
    const late = await customerPays(payment.paymentNo);
    expect(late.status).toBe(409);
    expect(await late.json()).toMatchObject({ code: 'ORDER_EXPIRED' });
    expect((await order(o.id)).refunds).toEqual([]);
  });

  it('paid at UnionPay while the sweep "closes" it: the query says paid and the order becomes PAID, not CANCELLED', async () => {
    const o = await newOrder();
    const { payment } = await pay(o.id);
    // Paid, but the back notification never comes and the query fallback is too slow: the sweeper finds it first.
    expect((await customerPays(payment.paymentNo, false)).status).toBe(200);
    const swept = await t.app.services.lifecycle.sweepExpiredOrders(new Date(Date.now() + 10_000));
    expect(swept).toEqual({ cancelled: 0, paid: 1 });
    const final = await order(o.id);
    expect(final.status).toBe('PAID');
    expect(final.paidAmount).toBe(o.totalAmount);
    expect(final.payments[0].providerTransactionId).toBe(consume(payment.paymentNo).queryId);
    expect(final.history.at(-1)).toMatchObject({ to: 'PAID', actor: 'provider:unionpay' });
    expect(final.refunds).toEqual([]);
  });

  it('back notification lost: the query fallback finds the success and the subscriber sees PAID', async () => {
    const o = await newOrder();
    const sub = subscribe(o.id);
    const { payment } = await pay(o.id);
    const sent = sim.notifications.length;
    expect((await customerPays(payment.paymentNo, false)).status).toBe(200);
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'), 4000);
    const final = await order(o.id);
    expect(final.history.at(-1)).toMatchObject({ to: 'PAID', actor: 'system' });
    expect(sim.notifications.slice(sent).filter((n) => n.notificationId.startsWith(consume(payment.paymentNo).queryId!))).toEqual([]);
    expect(await notificationsOf(payment.paymentNo)).toEqual([]);
  });

  it('admin syncPayment asks UnionPay at once', async () => {
    const o = await newOrder();
    const { payment } = await pay(o.id);
    expect(sim.pay({ orderId: payment.paymentNo, outcome: 'SUCCESS', notify: false }).ok).toBe(true);
    const res = await t.gql(`mutation($id: ID!) { syncPayment(paymentId: $id) { status providerTransactionId } }`, { id: payment.id }, admin);
    expect(res.data.syncPayment).toMatchObject({ status: 'SUCCEEDED', providerTransactionId: consume(payment.paymentNo).queryId });
    expect((await order(o.id)).status).toBe('PAID');
  });

  it('paid after close: the cancelled order\'s QR is still paid before payTimeout; refunded automatically, the order stays CANCELLED', async () => {
    const before = await stock();
    const o = await newOrder();
    const { payment } = await pay(o.id);
    const cancelled = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status payments { status } } }`, { id: o.id }, alice);
    expect(cancelled.data.cancelOrder).toMatchObject({ status: 'CANCELLED', payments: [{ status: 'CLOSED' }] });
    // Nothing closes a UnionPay QR but its payTimeout: it is still payable.
    expect(consume(payment.paymentNo).state).toBe('PENDING');

    expect((await customerPays(payment.paymentNo)).status).toBe(200);
    const final = await eventually(() => order(o.id), (x) => x.refunds.length === 1 && x.refunds[0].status === 'SUCCEEDED');
    expect(final.status).toBe('CANCELLED');
    expect(final.history.filter((h: any) => h.to === 'PAID')).toEqual([]);
    expect(final.payments).toEqual([expect.objectContaining({ id: payment.id, status: 'SUCCEEDED' })]);
    expect(final.refunds[0]).toMatchObject({ amount: o.totalAmount, reason: 'paid after close', paymentId: payment.id });
    expect(final).toMatchObject({ refundedAmount: 0, paidAmount: 0 });
    expect(await stock()).toBe(before);
    // At UnionPay: one refund (txnType 04) of the consume, under our refund number, succeeded.
    expect(refundsAtUnionPay(payment.paymentNo)).toEqual([
      expect.objectContaining({ orderId: final.refunds[0].refundNo, txnAmt: o.totalAmount, state: 'SUCCESS' }),
    ]);
  });

  it('duplicate payment: the old UNIONPAY_GATEWAY cashier is paid after the order was paid by QR; refunded automatically', async () => {
    const o = await newOrder();
    const gateway = await pay(o.id, 'UNIONPAY_GATEWAY', { returnUrl: 'http://127.0.0.1/back' });
    await submitUnionPayFrontForm(gateway.redirectUrl); // the browser opens UnionPay's cashier
    // Switching "closes" the gateway payment (UnionPay says it is unpaid); its cashier stays payable until payTimeout.
    const qr = await pay(o.id, 'UNIONPAY_QR');
    expect((await order(o.id)).payments).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: gateway.payment.id, status: 'CLOSED' }),
        expect.objectContaining({ id: qr.payment.id, status: 'PENDING' }),
      ]),
    );
    expect((await customerPays(qr.payment.paymentNo)).status).toBe(200);
    await eventually(() => order(o.id), (x) => x.status === 'PAID');

    // The first browser tab still shows UnionPay's cashier, and the customer pays there too.
    expect((await customerPays(gateway.payment.paymentNo)).status).toBe(200);
    const final = await eventually(() => order(o.id), (x) => x.refunds.some((r: any) => r.status === 'SUCCEEDED'));
    expect(final.status).toBe('PAID');
    expect(final).toMatchObject({ paidAmount: o.totalAmount, refundedAmount: 0 });
    expect(final.refunds).toEqual([expect.objectContaining({ amount: o.totalAmount, reason: 'duplicate payment', paymentId: gateway.payment.id })]);
    expect(final.history.filter((h: any) => h.to === 'PAID')).toHaveLength(1);
    expect(refundsAtUnionPay(gateway.payment.paymentNo)).toEqual([expect.objectContaining({ orderId: final.refunds[0].refundNo, state: 'SUCCESS' })]);
    expect(refundsAtUnionPay(qr.payment.paymentNo)).toEqual([]);
  });

  it('cancelOrder on a PAYING order that was paid at UnionPay answers ALREADY_PAID and the order is PAID', async () => {
    const o = await newOrder();
    const { payment } = await pay(o.id);
    expect(sim.pay({ orderId: payment.paymentNo, outcome: 'SUCCESS', notify: false }).ok).toBe(true);
    const res = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id: o.id }, alice);
    expect(codeOf(res)).toBe('ALREADY_PAID');
    const final = await order(o.id);
    expect(final.status).toBe('PAID');
    expect(final.refunds).toEqual([]);
  });

  describe('refunds', () => {
    const paidOrder = async (quantity = 1) => {
      const o = await newOrder(quantity);
      const { payment } = await pay(o.id);
      expect((await customerPays(payment.paymentNo)).status).toBe(200);
      await eventually(() => order(o.id), (x) => x.status === 'PAID');
      return { ...o, paymentNo: payment.paymentNo };
    };
    const refund = (input: Record<string, unknown>) => t.gql(REFUND, { input }, admin);
    /** UnionPay answers a refund 00 (accepted); the result follows by notification, usually at once. */
    const settled = (orderId: string, n: number) =>
      eventually(() => order(orderId), (x) => x.refunds.length === n && x.refunds.every((r: any) => r.status !== 'PENDING'));

    it('partial refunds up to the paid amount, then REFUND_EXCEEDS_PAID; the last one makes the order REFUNDED and restocks', async () => {
      const before = await stock();
      const o = await paidOrder(2);
      expect(await stock()).toBe(before - 2);
      const sub = subscribe(o.id);
      const first = (await refund({ orderId: o.id, amount: 5000, reason: 'damaged box' })).data.refundOrder;
      expect(first).toMatchObject({ amount: 5000, reason: 'damaged box' });
      expect(['PENDING', 'SUCCEEDED']).toContain(first.status);
      // A refund accepted but not yet confirmed still holds its amount.
      expect(codeOf(await refund({ orderId: o.id, amount: o.totalAmount }))).toBe('REFUND_EXCEEDS_PAID');
      await settled(o.id, 1);
      expect(await order(o.id)).toMatchObject({ status: 'PAID', refundedAmount: 5000 });
      const rest = (await refund({ orderId: o.id })).data.refundOrder;
      expect(rest.amount).toBe(o.totalAmount - 5000);
      const final = await eventually(() => order(o.id), (x) => x.status === 'REFUNDED');
      expect(final.refundedAmount).toBe(o.totalAmount);
      expect(final.refunds.map((r: any) => r.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
      expect(await stock()).toBe(before);
      expect(codeOf(await refund({ orderId: o.id, amount: 1 }))).toBe('REFUND_EXCEEDS_PAID');
      await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'REFUNDED' && e.paymentStatusChanged.refundedAmount === o.totalAmount));
      expect(refundsAtUnionPay(o.paymentNo).map((r) => [r.orderId, r.txnAmt, r.state]).sort()).toEqual(
        [
          [first.refundNo, 5000, 'SUCCESS'],
          [rest.refundNo, o.totalAmount - 5000, 'SUCCESS'],
        ].sort(),
      );
    });

    it('two admins refunding the rest at the same moment: one is accepted, the other REFUND_EXCEEDS_PAID', async () => {
      const o = await paidOrder();
      const results = await Promise.all([refund({ orderId: o.id }), refund({ orderId: o.id })]);
      const codes = results.map((r) => (r.data?.refundOrder ? 'ACCEPTED' : codeOf(r))).sort();
      expect(codes).toEqual(['ACCEPTED', 'REFUND_EXCEEDS_PAID']);
      const final = await eventually(() => order(o.id), (x) => x.status === 'REFUNDED');
      expect(final.refundedAmount).toBe(o.totalAmount);
      expect(final.refunds).toEqual([expect.objectContaining({ amount: o.totalAmount, status: 'SUCCEEDED' })]);
      expect(refundsAtUnionPay(o.paymentNo)).toHaveLength(1);
    });

    it('a refund UnionPay keeps in progress (origRespCode 05) answers PENDING, then settles by notification', async () => {
      const o = await paidOrder();
      sim.setRefundBehaviour('success', 1500);
      const r = (await refund({ orderId: o.id, amount: 300 })).data.refundOrder;
      expect(r.status).toBe('PENDING');
      expect((await order(o.id)).refundedAmount).toBe(0);
      expect(refundsAtUnionPay(o.paymentNo)).toEqual([expect.objectContaining({ orderId: r.refundNo, state: 'PENDING' })]);
      const final = await eventually(() => order(o.id), (x) => x.refunds[0].status === 'SUCCEEDED' && x.refundedAmount === 300);
      expect(final.status).toBe('PAID');
      expect(refundsAtUnionPay(o.paymentNo)).toEqual([expect.objectContaining({ orderId: r.refundNo, state: 'SUCCESS' })]);
    });

    it('a refund UnionPay ends as failed (respCode 01) is FAILED and refunds nothing', async () => {
      const o = await paidOrder();
      sim.setRefundBehaviour('fail', 500);
      const r = (await refund({ orderId: o.id, amount: 300 })).data.refundOrder;
      expect(r.status).toBe('PENDING');
      const final = await eventually(() => order(o.id), (x) => x.refunds[0].status !== 'PENDING');
      expect(final.refunds[0].status).toBe('FAILED');
      expect(final).toMatchObject({ status: 'PAID', refundedAmount: 0 });
      expect(refundsAtUnionPay(o.paymentNo)).toEqual([expect.objectContaining({ orderId: r.refundNo, state: 'FAILED' })]);
    });

    it('a refund whose UnionPay call timed out is retried with the same refund orderId and refunds once', async () => {
      const o = await paidOrder();
      const provider = t.app.services.payments.provider('default', 'UNIONPAY_QR' as never);
      const original = provider.refund.bind(provider);
      let calls = 0;
      // The request reaches UnionPay, but the answer is lost: exactly what a timeout looks like from here.
      provider.refund = async (input) => {
        calls++;
        await original(input);
        if (calls === 1) throw new ProviderNetworkError('UnionPay refund (backTransReq.do) timed out', 'unionpay');
        return original(input);
      };
      try {
        const r = (await refund({ orderId: o.id, amount: 400 })).data.refundOrder;
        expect(r.status).toBe('PENDING');
        const final = await eventually(() => order(o.id), (x) => x.refunds[0].status === 'SUCCEEDED' && x.refundedAmount === 400);
        expect(final.refunds).toHaveLength(1);
        const atUnionPay = refundsAtUnionPay(o.paymentNo);
        expect(atUnionPay).toHaveLength(1);
        expect(atUnionPay[0]).toMatchObject({ orderId: r.refundNo, txnAmt: 400, state: 'SUCCESS' });
      } finally {
        provider.refund = original;
      }
    });

    // Regression: UnionPay identifies a refund by orderId + txnTime. The txnTime is the refund's creation time
    // (RefundRef.requestedAt), the same on every retry, so after a lost answer and lost notifications the follow-up
    // query still finds the refund.
    it('after a lost refund answer and lost notifications, the refund query still finds the refund', async () => {
      const o = await paidOrder();
      // In another second than the payment's txnTime (else the payment's txnTime happens to be the refund's too).
      await new Promise((r) => setTimeout(r, 1100));
      sim.setRefundBehaviour('pending'); // accepted; UnionPay settles it later
      const provider = t.app.services.payments.provider('default', 'UNIONPAY_QR' as never);
      const original = provider.refund.bind(provider);
      let calls = 0;
      provider.refund = async (input) => {
        calls++;
        const answer = await original(input);
        if (calls === 1) throw new ProviderNetworkError('UnionPay refund (backTransReq.do) timed out', 'unionpay');
        return answer;
      };
      try {
        const r = (await refund({ orderId: o.id, amount: 600 })).data.refundOrder;
        expect(r.status).toBe('PENDING');
        // UnionPay completes the refund, but every back notification about it is lost.
        const atUnionPay = refundsAtUnionPay(o.paymentNo);
        expect(atUnionPay).toEqual([expect.objectContaining({ orderId: r.refundNo, state: 'PENDING' })]);
        atUnionPay[0]!.state = 'SUCCESS';
        // The order row and its refunds are read one after the other in a query: wait for both to show the end.
        const final = await eventually(() => order(o.id), (x) => x.refunds[0].status === 'SUCCEEDED' && x.refundedAmount === 600, 6000);
        expect(final.refunds).toHaveLength(1);
      } finally {
        provider.refund = original;
      }
    });
  });
});
