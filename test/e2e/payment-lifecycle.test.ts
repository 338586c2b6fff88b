import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { ProviderNetworkError } from '../../src/payments/providers/errors';
import { WechatPayStore, type WechatPaySimulator } from '../../src/simulators/wechatpay';
import { codeOf, startTestApp, type Db, type TestApp } from '../helpers/app';
import { eventually, lifecycleFixture } from '../helpers/lifecycle';
import { createPostgresDatabase } from '../helpers/services';

const PAY = `mutation($input: PayOrderInput!) { payOrder(input: $input) { payment { id paymentNo status } qrCodeUrl } }`;
const REFUND = `mutation($input: RefundOrderInput!) { refundOrder(input: $input) { id refundNo amount status reason paymentId } }`;
const ORDER = `query($id: ID!) { order(id: $id) { status paidAmount refundedAmount
  payments { id paymentNo channel status } refunds { refundNo amount status reason paymentId } history { from to actor reason } } }`;

const databases: Db[] = inject('postgres') ? ['sqlite', 'postgresql'] : ['sqlite'];

describe.each(databases)('payment lifecycle with WeChat Pay on %s', (db) => {
  const fx = lifecycleFixture(db);
  const { newOrder, stock, subscribe } = fx;
  let t: TestApp;
  let sim: WechatPaySimulator;
  let admin: string;
  let alice: string;
  beforeAll(() => {
    ({ t, admin, alice } = fx);
    sim = t.app.providers.simulator.wechatpay!;
  });
  afterEach(() => sim.setRefundBehaviour('success'));

  const pay = async (orderId: string, channel = 'WECHAT_NATIVE', extra: Record<string, unknown> = {}) => {
    const res = await t.gql(PAY, { input: { orderId, channel, ...extra } }, alice);
    expect(res.errors).toBeUndefined();
    return res.data.payOrder as { payment: { id: string; paymentNo: string }; qrCodeUrl: string };
  };
  const order = async (id: string) => (await t.gql(ORDER, { id }, admin)).data.order;
  const simTx = (paymentNo: string) => WechatPayStore.toWire(sim.store.find({ out_trade_no: paymentNo })!);
  /** WeChat Pay's side of a race: the payment succeeds there after (or while) we closed it. */
  const providerSaysPaid = async (paymentNo: string) => {
    const stored = sim.store.find({ out_trade_no: paymentNo })!;
    const transactionId = `42000000${Date.now()}`;
    sim.store.markPaid(stored, transactionId, new Date(), 'oTestOpenid');
    const n = sim.buildNotification(stored.mchid, { eventType: 'TRANSACTION.SUCCESS', resource: WechatPayStore.toWire(stored) });
    const res = await fetch(`${t.url}/notify/wechatpay`, { method: 'POST', headers: n.headers, body: n.rawBody });
    expect(res.status).toBe(204);
  };

  it('an unpaid order is swept at its deadline: closed at the provider, CANCELLED by system, stock back', async () => {
    const before = await stock();
    const o = await newOrder(2);
    const { payment } = await pay(o.id);
    expect(await stock()).toBe(before - 2);
    const sub = subscribe(o.id);
    const swept = await eventually(() => order(o.id), (x) => x.status === 'CANCELLED');
    expect(swept.history.at(-1)).toMatchObject({ from: 'PAYING', to: 'CANCELLED', actor: 'system', reason: 'payment timeout' });
    expect(swept.payments[0].status).toBe('CLOSED');
    expect(simTx(payment.paymentNo).trade_state).toBe('CLOSED');
    expect(await stock()).toBe(before);
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'CANCELLED'));
  });

  it('paid at the provider while the sweep closes it: the order becomes PAID, not CANCELLED', async () => {
    const o = await newOrder();
    const { qrCodeUrl } = await pay(o.id);
    // Paid, but the callback never comes and the query fallback is too slow: the sweeper finds it first.
    const paid = await fetch(`${t.url}/simulator/wechatpay/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code_url: qrCodeUrl, outcome: 'SUCCESS', notify: false }),
    });
    expect(paid.status).toBe(200);
    // The sweeper runs as if the deadline had passed, before the query fallback's first look.
    const swept = await t.app.services.lifecycle.sweepExpiredOrders(new Date(Date.now() + 10_000));
    expect(swept).toEqual({ cancelled: 0, paid: 1 });
    const final = await order(o.id);
    expect(final.status).toBe('PAID');
    expect(final.paidAmount).toBe(o.totalAmount);
    expect(final.history.at(-1)).toMatchObject({ to: 'PAID', actor: 'provider:wechatpay' });
    expect(final.refunds).toEqual([]);
  });

  it('callback suppressed: the query fallback finds the success and the subscriber sees PAID', async () => {
    const o = await newOrder();
    const sub = subscribe(o.id);
    const { qrCodeUrl, payment } = await pay(o.id);
    await fetch(`${t.url}/simulator/wechatpay/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code_url: qrCodeUrl, outcome: 'SUCCESS', notify: false }),
    });
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'), 4000);
    const final = await order(o.id);
    expect(final.history.at(-1)).toMatchObject({ to: 'PAID', actor: 'system' });
    expect(sim.notifications.filter((n) => n.label?.includes(payment.paymentNo))).toEqual([]);
  });

  it('admin syncPayment asks the provider at once', async () => {
    const o = await newOrder();
    const { qrCodeUrl, payment } = await pay(o.id);
    sim.pay({ code_url: qrCodeUrl, outcome: 'SUCCESS', notify: false });
    const res = await t.gql(`mutation($id: ID!) { syncPayment(paymentId: $id) { status providerTransactionId } }`, { id: payment.id }, admin);
    expect(res.data.syncPayment).toMatchObject({ status: 'SUCCEEDED', providerTransactionId: expect.any(String) });
    expect((await order(o.id)).status).toBe('PAID');
    expect(codeOf(await t.gql(`mutation($id: ID!) { syncPayment(paymentId: $id) { status } }`, { id: payment.id }, alice))).toBe('FORBIDDEN');
  });

  it('a success after the order was cancelled is refunded automatically (paid after close); the order stays CANCELLED', async () => {
    const o = await newOrder();
    const { payment } = await pay(o.id);
    const cancelled = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id: o.id }, alice);
    expect(cancelled.data.cancelOrder.status).toBe('CANCELLED');
    await providerSaysPaid(payment.paymentNo);
    const final = await eventually(() => order(o.id), (x) => x.refunds.length === 1 && x.refunds[0].status === 'SUCCEEDED');
    expect(final.status).toBe('CANCELLED');
    expect(final.payments[0].status).toBe('SUCCEEDED');
    expect(final.refunds[0]).toMatchObject({ amount: o.totalAmount, reason: 'paid after close' });
    expect(final.refundedAmount).toBe(0);
    expect(sim.store.refundsOf(sim.store.find({ out_trade_no: payment.paymentNo })!)).toHaveLength(1);
  });

  it('a success on a second channel after the order was paid is refunded automatically (duplicate payment)', async () => {
    const o = await newOrder();
    const jsapi = await pay(o.id, 'WECHAT_JSAPI', { openid: 'oTestOpenid' });
    const native = await pay(o.id, 'WECHAT_NATIVE'); // closes the JSAPI payment at the provider first
    sim.pay({ code_url: native.qrCodeUrl, outcome: 'SUCCESS' });
    await eventually(() => order(o.id), (x) => x.status === 'PAID');
    await providerSaysPaid(jsapi.payment.paymentNo);
    const final = await eventually(() => order(o.id), (x) => x.refunds.some((r: any) => r.status === 'SUCCEEDED'));
    expect(final.status).toBe('PAID');
    expect(final.paidAmount).toBe(o.totalAmount);
    expect(final.refunds).toEqual([expect.objectContaining({ amount: o.totalAmount, reason: 'duplicate payment', paymentId: jsapi.payment.id })]);
    expect(final.history.filter((h: any) => h.to === 'PAID')).toHaveLength(1);
  });

  it("cancelOrder on a PAYING order that was paid at the provider answers ALREADY_PAID and the order is PAID", async () => {
    const o = await newOrder();
    const { qrCodeUrl } = await pay(o.id);
    sim.pay({ code_url: qrCodeUrl, outcome: 'SUCCESS', notify: false });
    const res = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id: o.id }, alice);
    expect(codeOf(res)).toBe('ALREADY_PAID');
    expect((await order(o.id)).status).toBe('PAID');
  });

  describe('refunds', () => {
    const paidOrder = async (quantity = 1) => {
      const o = await newOrder(quantity);
      const { qrCodeUrl } = await pay(o.id);
      sim.pay({ code_url: qrCodeUrl, outcome: 'SUCCESS' });
      await eventually(() => order(o.id), (x) => x.status === 'PAID');
      return o;
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
      expect((await order(o.id))).toMatchObject({ status: 'PAID', refundedAmount: 5000 });
      const rest = await refund({ orderId: o.id });
      expect(rest.data.refundOrder).toMatchObject({ amount: o.totalAmount - 5000, status: 'SUCCEEDED' });
      const final = await order(o.id);
      expect(final).toMatchObject({ status: 'REFUNDED', refundedAmount: o.totalAmount });
      expect(await stock()).toBe(before);
      expect(codeOf(await refund({ orderId: o.id, amount: 1 }))).toBe('REFUND_EXCEEDS_PAID');
      await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'REFUNDED' && e.paymentStatusChanged.refundedAmount === o.totalAmount));
    });

    it('idempotent by key: a replay answers the same refund, a different amount conflicts', async () => {
      const o = await paidOrder();
      const a = (await refund({ orderId: o.id, amount: 100, idempotencyKey: 'rf-1' })).data.refundOrder;
      const b = (await refund({ orderId: o.id, amount: 100, idempotencyKey: 'rf-1' })).data.refundOrder;
      expect(b.refundNo).toBe(a.refundNo);
      expect(codeOf(await refund({ orderId: o.id, amount: 200, idempotencyKey: 'rf-1' }))).toBe('IDEMPOTENCY_CONFLICT');
      expect((await order(o.id)).refundedAmount).toBe(100);
    });

    it('two admins refunding the rest at the same moment: one succeeds, the other REFUND_EXCEEDS_PAID', async () => {
      const o = await paidOrder();
      const results = await Promise.all([refund({ orderId: o.id }), refund({ orderId: o.id })]);
      const outcomes = results.map((r) => r.data?.refundOrder?.status ?? codeOf(r)).sort();
      expect(outcomes).toEqual(['REFUND_EXCEEDS_PAID', 'SUCCEEDED']);
      expect((await order(o.id))).toMatchObject({ status: 'REFUNDED', refundedAmount: o.totalAmount });
    });

    it('a refund that stays PROCESSING answers PENDING, then settles by notification', async () => {
      const o = await paidOrder();
      sim.setRefundBehaviour('success', 1500);
      const r = (await refund({ orderId: o.id, amount: 300 })).data.refundOrder;
      expect(r.status).toBe('PENDING');
      expect((await order(o.id)).refundedAmount).toBe(0);
      const final = await eventually(() => order(o.id), (x) => x.refunds[0].status === 'SUCCEEDED' && x.refundedAmount === 300);
      expect(final.refundedAmount).toBe(300);
    });

    it('a refund that ends ABNORMAL is FAILED and refunds nothing', async () => {
      const o = await paidOrder();
      sim.setRefundBehaviour('abnormal', 500);
      const r = (await refund({ orderId: o.id, amount: 300 })).data.refundOrder;
      expect(r.status).toBe('PENDING');
      const final = await eventually(() => order(o.id), (x) => x.refunds[0].status !== 'PENDING');
      expect(final.refunds[0].status).toBe('FAILED');
      expect(final).toMatchObject({ status: 'PAID', refundedAmount: 0 });
    });

    it('a refund whose provider call timed out is retried with the same refund number and refunds once', async () => {
      const o = await paidOrder();
      const provider = t.app.services.payments.provider('default', 'WECHAT_NATIVE' as never);
      const original = provider.refund.bind(provider);
      let calls = 0;
      // The request reaches WeChat Pay, but the answer is lost: exactly what a timeout looks like from here.
      provider.refund = async (input) => {
        calls++;
        await original(input);
        if (calls === 1) throw new ProviderNetworkError('timeout of 10000ms exceeded', 'wechatpay');
        return original(input);
      };
      try {
        const r = (await refund({ orderId: o.id, amount: 400 })).data.refundOrder;
        expect(r.status).toBe('PENDING');
        // The order row and its refunds are read by separate queries: wait for both to show the result.
        const final = await eventually(() => order(o.id), (x) => x.refunds[0].status === 'SUCCEEDED' && x.refundedAmount === 400);
        const paymentNo = final.payments.find((p: any) => p.status === 'SUCCEEDED').paymentNo;
        const atProvider = sim.store.refundsOf(sim.store.find({ out_trade_no: paymentNo })!);
        expect(atProvider).toHaveLength(1);
        expect(atProvider[0]!.out_refund_no).toBe(r.refundNo);
      } finally {
        provider.refund = original;
      }
    });

    it('only admins refund, and only paid orders', async () => {
      const o = await newOrder();
      expect(codeOf(await t.gql(REFUND, { input: { orderId: o.id } }, alice))).toBe('FORBIDDEN');
      expect(codeOf(await refund({ orderId: o.id }))).toBe('INVALID_TRANSITION');
      expect(codeOf(await refund({ orderId: 'nope' }))).toBe('NOT_FOUND');
      expect(codeOf(await refund({ orderId: o.id, amount: 0 }))).toBe('BAD_USER_INPUT');
    });
  });
});

describe.skipIf(!inject('postgres'))('two instances sweeping the same expired orders on PostgreSQL', () => {
  it('handles each order once', async () => {
    const db = await createPostgresDatabase();
    const env = { DATABASE_URL: db.url, PAYMENT_TIMEOUT_SECONDS: '1' };
    const a = await startTestApp('postgresql', env);
    const b = await startTestApp('postgresql', env);
    try {
      const admin = a.token('root', 'admin');
      await a.gql(`mutation { createProduct(input: { sku: "X", name: "X", priceAmount: 100, stock: 100 }) { id } }`, {}, admin);
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await a.gql(`mutation { createOrder(input: { items: [{ sku: "X", quantity: 1 }] }) { id } }`, {}, a.token(`c${i}`));
        ids.push(res.data.createOrder.id);
      }
      await new Promise((r) => setTimeout(r, 1100));
      await Promise.all([
        a.app.services.lifecycle.sweepExpiredOrders(),
        b.app.services.lifecycle.sweepExpiredOrders(),
        a.app.services.lifecycle.sweepExpiredOrders(),
        b.app.services.lifecycle.sweepExpiredOrders(),
      ]);
      const orders = await eventually(
        () => a.gql(`{ orders(first: 100) { edges { node { status history { to } } } } }`, {}, admin).then((r) => r.data.orders.edges),
        (edges: any[]) => edges.every((e) => e.node.status === 'CANCELLED'),
      );
      expect(orders).toHaveLength(20);
      for (const e of orders) expect(e.node.history.filter((h: any) => h.to === 'CANCELLED')).toHaveLength(1);
      const stock = (await a.gql(`{ products { stock } }`, {}, admin)).data.products[0].stock;
      expect(stock).toBe(100);
    } finally {
      await a.close();
      await b.close();
      await db.drop();
    }
  });
});
