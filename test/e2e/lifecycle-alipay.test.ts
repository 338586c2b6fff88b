import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { ProviderNetworkError } from '../../src/payments/providers/errors';
import { AlipayStore, type AlipaySimulator } from '../../src/simulators/alipay';
import { codeOf, type Db, type TestApp } from '../helpers/app';
import { eventually, lifecycleFixture, postJson } from '../helpers/lifecycle';

/**
 * The payment lifecycle (sweep, query fallback, late and duplicate successes, refunds) with Alipay, through ALIPAY_QR
 * (当面付 precreate) and the Alipay simulator, as `payment-lifecycle.test.ts` does for WeChat Pay.
 *
 * What is Alipay's own here: a precreated QR is unknown to Alipay until it is scanned, so `alipay.trade.close` answers
 * ACQ.TRADE_NOT_EXIST and does NOT close it; the QR stays payable until its `time_expire` (the order's deadline).
 * A success after the order was cancelled is therefore a real case ("paid after close"), refunded automatically.
 * Alipay refunds synchronously (`fund_change: Y`); one accepted but not done yet answers `fund_change: N` and the
 * refund query shows no `refund_status` until it is; Alipay's failure is a refusal of the refund call itself.
 */

const PAY = `mutation($input: PayOrderInput!) { payOrder(input: $input) { payment { id paymentNo status } qrCodeUrl redirectUrl } }`;
const REFUND = `mutation($input: RefundOrderInput!) { refundOrder(input: $input) { id refundNo amount status reason paymentId } }`;
const ORDER = `query($id: ID!) { order(id: $id) { status paidAmount refundedAmount expiresAt
  payments { id paymentNo channel status } refunds { refundNo amount status reason paymentId } history { from to actor reason } } }`;
const NOTIFICATIONS = `{ paymentNotifications(first: 100) { edges { node { provider paymentNo outcome flagged reason } } } }`;

const databases: Db[] = inject('postgres') ? ['sqlite', 'postgresql'] : ['sqlite'];

describe.each(databases)('payment lifecycle with Alipay (ALIPAY_QR) on %s', (db) => {
  const fx = lifecycleFixture(db);
  const { newOrder, stock, subscribe } = fx;
  let t: TestApp;
  let sim: AlipaySimulator;
  let admin: string;
  let alice: string;
  beforeAll(() => {
    ({ t, admin, alice } = fx);
    sim = t.app.providers.simulator.alipay!;
  });
  afterEach(() => sim.setRefundBehaviour('success'));

  const pay = async (orderId: string, channel = 'ALIPAY_QR', extra: Record<string, unknown> = {}) => {
    const res = await t.gql(PAY, { input: { orderId, channel, ...extra } }, alice);
    expect(res.errors).toBeUndefined();
    return res.data.payOrder as { payment: { id: string; paymentNo: string }; qrCodeUrl: string; redirectUrl: string };
  };
  const order = async (id: string) => (await t.gql(ORDER, { id }, admin)).data.order;
  const trade = (paymentNo: string) => sim.store.find({ out_trade_no: paymentNo })!;
  const notificationsOf = async (paymentNo: string) =>
    ((await t.gql(NOTIFICATIONS, {}, admin)).data.paymentNotifications.edges as any[]).map((e) => e.node).filter((n) => n.paymentNo === paymentNo);
  /** The customer scans the QR and pays on the phone; `notify: false` loses Alipay's TRADE_SUCCESS notification. */
  const customerPays = (qr: { qr_code?: string; out_trade_no?: string }, notify = true) =>
    postJson(`${t.url}/simulator/alipay/pay`, { ...qr, outcome: 'SUCCESS', notify });

  it('an unscanned QR at its deadline: close answers TRADE_NOT_EXIST, the QR expires with the order, CANCELLED by system, stock back', async () => {
    const before = await stock();
    const o = await newOrder(2);
    const { payment, qrCodeUrl } = await pay(o.id);
    expect(await stock()).toBe(before - 2);
    const sub = subscribe(o.id);
    // The QR itself carries the order's deadline: that is the only thing that stops an unscanned QR.
    const { expiresAt } = await order(o.id);
    expect(trade(payment.paymentNo).expiresAt).toBe(Math.floor(Date.parse(expiresAt) / 1000) * 1000);

    const swept = await eventually(() => order(o.id), (x) => x.status === 'CANCELLED');
    expect(swept.history.at(-1)).toMatchObject({ from: 'PAYING', to: 'CANCELLED', actor: 'system', reason: 'payment timeout' });
    expect(swept.payments[0].status).toBe('CLOSED');
    expect(await stock()).toBe(before);
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'CANCELLED'));
    // Alipay never learnt of the trade (close could not close it), but past time_expire nobody can pay the QR.
    expect(trade(payment.paymentNo).status).toBe('UNSCANNED');
    expect(AlipayStore.payable(trade(payment.paymentNo))).toBe(false);
    const late = await customerPays({ qr_code: qrCodeUrl });
    expect(late.status).toBe(409);
    expect(await late.json()).toMatchObject({ code: 'ACQ.TRADE_HAS_CLOSE' });
    expect((await order(o.id)).refunds).toEqual([]);
  });

  it('a scanned QR at its deadline: Alipay has closed it itself (time_expire), the sweep confirms it by query, CANCELLED', async () => {
    const before = await stock();
    const o = await newOrder();
    const { payment, qrCodeUrl } = await pay(o.id);
    // The customer scans but does not pay: Alipay now knows the trade (WAIT_BUYER_PAY).
    expect((await fetch(sim.scanUrl(qrCodeUrl))).status).toBe(200);
    expect(trade(payment.paymentNo).status).toBe('WAIT_BUYER_PAY');

    // time_expire is the order's deadline (to the second), so when the sweeper comes Alipay has just closed the
    // trade itself: alipay.trade.close answers ACQ.TRADE_STATUS_ERROR and the query TRADE_CLOSED.
    const swept = await eventually(() => order(o.id), (x) => x.status === 'CANCELLED');
    expect(swept.history.at(-1)).toMatchObject({ to: 'CANCELLED', actor: 'system', reason: 'payment timeout' });
    expect(swept.payments[0].status).toBe('CLOSED');
    expect(trade(payment.paymentNo)).toMatchObject({ status: 'TRADE_CLOSED', gmt_close: expect.any(Date) });
    expect(await stock()).toBe(before);
    expect((await customerPays({ qr_code: qrCodeUrl })).status).toBe(409);
  });

  it('cancelling a scanned QR before its deadline closes it at Alipay (alipay.trade.close: TRADE_CLOSED, notified)', async () => {
    const before = await stock();
    const o = await newOrder();
    const { payment, qrCodeUrl } = await pay(o.id);
    expect((await fetch(sim.scanUrl(qrCodeUrl))).status).toBe(200);
    const cancelled = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status payments { status } } }`, { id: o.id }, alice);
    expect(cancelled.data.cancelOrder).toMatchObject({ status: 'CANCELLED', payments: [{ status: 'CLOSED' }] });
    const closed = trade(payment.paymentNo);
    expect(closed).toMatchObject({ status: 'TRADE_CLOSED', gmt_close: expect.any(Date) });
    expect(closed.gmt_close!.getTime()).toBeLessThan(closed.expiresAt); // closed by the call, not by expiry
    expect(await stock()).toBe(before);
    // Alipay's TRADE_CLOSED notification arrives, verifies, and changes nothing more.
    const seen = await eventually(() => notificationsOf(payment.paymentNo), (ns) => ns.length >= 1);
    expect(seen.every((n) => !n.flagged && (n.outcome === 'applied' || n.outcome === 'duplicate'))).toBe(true);
    const late = await customerPays({ qr_code: qrCodeUrl });
    expect(late.status).toBe(409);
    expect(await late.json()).toMatchObject({ code: 'ACQ.TRADE_HAS_CLOSE' });
    expect((await order(o.id)).refunds).toEqual([]);
  });

  it('paid at Alipay while the sweep closes it: the order becomes PAID, not CANCELLED', async () => {
    const o = await newOrder();
    const { qrCodeUrl } = await pay(o.id);
    // Paid, but the notification never comes and the query fallback is too slow: the sweeper finds it first.
    expect((await customerPays({ qr_code: qrCodeUrl }, false)).status).toBe(200);
    // close answers ACQ.TRADE_STATUS_ERROR; the query says TRADE_SUCCESS.
    const swept = await t.app.services.lifecycle.sweepExpiredOrders(new Date(Date.now() + 10_000));
    expect(swept).toEqual({ cancelled: 0, paid: 1 });
    const final = await order(o.id);
    expect(final.status).toBe('PAID');
    expect(final.paidAmount).toBe(o.totalAmount);
    expect(final.history.at(-1)).toMatchObject({ to: 'PAID', actor: 'provider:alipay' });
    expect(final.refunds).toEqual([]);
  });

  it('notification lost: the query fallback finds TRADE_SUCCESS and the subscriber sees PAID', async () => {
    const o = await newOrder();
    const sub = subscribe(o.id);
    const { qrCodeUrl, payment } = await pay(o.id);
    const sent = sim.notifications.length;
    expect((await customerPays({ qr_code: qrCodeUrl }, false)).status).toBe(200);
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'), 4000);
    const final = await order(o.id);
    expect(final.history.at(-1)).toMatchObject({ to: 'PAID', actor: 'system' });
    expect(sim.notifications.slice(sent).filter((n) => n.label === 'TRADE_SUCCESS')).toEqual([]);
    expect(await notificationsOf(payment.paymentNo)).toEqual([]);
  });

  it('admin syncPayment asks Alipay at once', async () => {
    const o = await newOrder();
    const { qrCodeUrl, payment } = await pay(o.id);
    expect(sim.pay({ qr_code: qrCodeUrl, outcome: 'SUCCESS', notify: false }).ok).toBe(true);
    const res = await t.gql(`mutation($id: ID!) { syncPayment(paymentId: $id) { status providerTransactionId } }`, { id: payment.id }, admin);
    expect(res.data.syncPayment).toMatchObject({ status: 'SUCCEEDED', providerTransactionId: trade(payment.paymentNo).trade_no });
    expect((await order(o.id)).status).toBe('PAID');
  });

  it('paid after close: the cancelled order\'s unscanned QR is still paid; the success is refunded automatically, the order stays CANCELLED', async () => {
    const before = await stock();
    const o = await newOrder();
    const { payment, qrCodeUrl } = await pay(o.id);
    const cancelled = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status payments { status } } }`, { id: o.id }, alice);
    expect(cancelled.data.cancelOrder).toMatchObject({ status: 'CANCELLED', payments: [{ status: 'CLOSED' }] });
    // alipay.trade.close answered ACQ.TRADE_NOT_EXIST: Alipay did not close anything, the QR is still payable.
    expect(trade(payment.paymentNo).status).toBe('UNSCANNED');
    expect(AlipayStore.payable(trade(payment.paymentNo))).toBe(true);

    const sent = sim.notifications.length;
    expect((await customerPays({ qr_code: qrCodeUrl })).status).toBe(200);
    const final = await eventually(() => order(o.id), (x) => x.refunds.length === 1 && x.refunds[0].status === 'SUCCEEDED');
    expect(final.status).toBe('CANCELLED');
    expect(final.history.filter((h: any) => h.to === 'PAID')).toEqual([]);
    expect(final.payments).toEqual([expect.objectContaining({ id: payment.id, status: 'SUCCEEDED' })]);
    expect(final.refunds[0]).toMatchObject({ amount: o.totalAmount, reason: 'paid after close', paymentId: payment.id });
    expect(final.refundedAmount).toBe(0);
    expect(final.paidAmount).toBe(0);
    expect(await stock()).toBe(before);
    // Alipay refunded it in full (the trade reads TRADE_CLOSED), once, under our refund number.
    const atAlipay = sim.store.refundsOf(trade(payment.paymentNo));
    expect(atAlipay).toEqual([expect.objectContaining({ out_request_no: final.refunds[0].refundNo, amount: o.totalAmount })]);
    expect(trade(payment.paymentNo).status).toBe('TRADE_CLOSED');
    // Alipay's two notifications (TRADE_SUCCESS, then TRADE_CLOSED for the full refund) were both acknowledged.
    const deliveries = await eventually(
      async () => sim.notifications.slice(sent),
      (ds) => ds.some((d) => d.label === 'TRADE_CLOSED refund' && d.acknowledged),
    );
    expect(deliveries.filter((d) => d.label === 'TRADE_SUCCESS').map((d) => d.acknowledged)).toEqual([true]);
    expect(await notificationsOf(payment.paymentNo)).toEqual([expect.objectContaining({ outcome: 'applied', flagged: false })]);
  });

  it('duplicate payment: the old QR is paid after the order was paid by ALIPAY_PAGE; refunded automatically, the order stays PAID', async () => {
    const o = await newOrder();
    const qr = await pay(o.id, 'ALIPAY_QR');
    // Switching closes the QR payment at Alipay first (TRADE_NOT_EXIST: nothing to close, the QR stays payable).
    const page = await pay(o.id, 'ALIPAY_PAGE', { returnUrl: 'http://127.0.0.1/back' });
    expect((await order(o.id)).payments).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: qr.payment.id, status: 'CLOSED' }), expect.objectContaining({ id: page.payment.id, status: 'PENDING' })]),
    );
    expect((await fetch(page.redirectUrl)).status).toBe(200); // the browser opens Alipay's cashier
    expect((await customerPays({ out_trade_no: page.payment.paymentNo })).status).toBe(200);
    await eventually(() => order(o.id), (x) => x.status === 'PAID');

    // Another person in the household still has the first QR on screen and pays it.
    expect((await customerPays({ qr_code: qr.qrCodeUrl })).status).toBe(200);
    const final = await eventually(() => order(o.id), (x) => x.refunds.some((r: any) => r.status === 'SUCCEEDED'));
    expect(final.status).toBe('PAID');
    expect(final.paidAmount).toBe(o.totalAmount);
    expect(final.refundedAmount).toBe(0);
    expect(final.refunds).toEqual([expect.objectContaining({ amount: o.totalAmount, reason: 'duplicate payment', paymentId: qr.payment.id })]);
    expect(final.history.filter((h: any) => h.to === 'PAID')).toHaveLength(1);
    expect(sim.store.refundsOf(trade(qr.payment.paymentNo))).toEqual([expect.objectContaining({ out_request_no: final.refunds[0].refundNo })]);
    expect(sim.store.refundsOf(trade(page.payment.paymentNo))).toEqual([]);
  });

  it('cancelOrder on a PAYING order that was paid at Alipay answers ALREADY_PAID and the order is PAID', async () => {
    const o = await newOrder();
    const { qrCodeUrl } = await pay(o.id);
    expect(sim.pay({ qr_code: qrCodeUrl, outcome: 'SUCCESS', notify: false }).ok).toBe(true);
    const res = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id: o.id }, alice);
    expect(codeOf(res)).toBe('ALREADY_PAID');
    const final = await order(o.id);
    expect(final.status).toBe('PAID');
    expect(final.refunds).toEqual([]);
  });

  describe('refunds', () => {
    const paidOrder = async (quantity = 1) => {
      const o = await newOrder(quantity);
      const { qrCodeUrl, payment } = await pay(o.id);
      expect((await customerPays({ qr_code: qrCodeUrl })).status).toBe(200);
      await eventually(() => order(o.id), (x) => x.status === 'PAID');
      return { ...o, paymentNo: payment.paymentNo };
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
      // At Alipay: two refunds under our numbers; the trade refunded in full reads TRADE_CLOSED.
      expect(sim.store.refundsOf(trade(o.paymentNo)).map((r) => r.out_request_no).sort()).toEqual(
        [first.data.refundOrder.refundNo, rest.data.refundOrder.refundNo].sort(),
      );
      expect(sim.store.refunded(trade(o.paymentNo))).toBe(o.totalAmount);
      expect(trade(o.paymentNo).status).toBe('TRADE_CLOSED');
    });

    it('two admins refunding the rest at the same moment: one succeeds, the other REFUND_EXCEEDS_PAID', async () => {
      const o = await paidOrder();
      const results = await Promise.all([refund({ orderId: o.id }), refund({ orderId: o.id })]);
      const outcomes = results.map((r) => r.data?.refundOrder?.status ?? codeOf(r)).sort();
      expect(outcomes).toEqual(['REFUND_EXCEEDS_PAID', 'SUCCEEDED']);
      expect(await order(o.id)).toMatchObject({ status: 'REFUNDED', refundedAmount: o.totalAmount });
      expect(sim.store.refundsOf(trade(o.paymentNo))).toHaveLength(1);
    });

    it('a refund Alipay accepts but has not done yet (fund_change N) answers PENDING, then settles by notification', async () => {
      const o = await paidOrder();
      sim.setRefundBehaviour('success', 1500);
      const r = (await refund({ orderId: o.id, amount: 300 })).data.refundOrder;
      expect(r.status).toBe('PENDING');
      expect((await order(o.id)).refundedAmount).toBe(0);
      expect(sim.store.refund(trade(o.paymentNo).appId, o.paymentNo, r.refundNo)).toMatchObject({ status: 'PROCESSING' });
      const final = await eventually(() => order(o.id), (x) => x.refunds[0].status === 'SUCCEEDED' && x.refundedAmount === 300);
      expect(final.status).toBe('PAID');
      expect(sim.store.refundsOf(trade(o.paymentNo))).toEqual([expect.objectContaining({ out_request_no: r.refundNo, status: 'SUCCESS' })]);
    });

    it('a refund Alipay refuses (ACQ.SELLER_BALANCE_NOT_ENOUGH) is FAILED at once, PAYMENT_PROVIDER_ERROR, and refunds nothing', async () => {
      const o = await paidOrder();
      sim.setRefundBehaviour('fail');
      const res = await refund({ orderId: o.id, amount: 300 });
      expect(codeOf(res)).toBe('PAYMENT_PROVIDER_ERROR');
      const final = await order(o.id);
      expect(final.refunds).toEqual([expect.objectContaining({ amount: 300, status: 'FAILED' })]);
      expect(final).toMatchObject({ status: 'PAID', refundedAmount: 0 });
      expect(sim.store.refundsOf(trade(o.paymentNo))).toEqual([]);
      // A FAILED refund no longer holds the amount: the whole payment can still be refunded.
      sim.setRefundBehaviour('success');
      expect((await refund({ orderId: o.id })).data.refundOrder).toMatchObject({ amount: o.totalAmount, status: 'SUCCEEDED' });
    });

    it('a refund whose Alipay call timed out is retried with the same out_request_no and refunds once', async () => {
      const o = await paidOrder();
      const provider = t.app.services.payments.provider('default', 'ALIPAY_QR' as never);
      const original = provider.refund.bind(provider);
      let calls = 0;
      // The request reaches Alipay, but the answer is lost: exactly what a timeout looks like from here.
      provider.refund = async (input) => {
        calls++;
        await original(input);
        if (calls === 1) throw new ProviderNetworkError('Alipay request alipay.trade.refund failed: timeout', 'alipay');
        return original(input);
      };
      try {
        const r = (await refund({ orderId: o.id, amount: 400 })).data.refundOrder;
        expect(r.status).toBe('PENDING');
        const final = await eventually(() => order(o.id), (x) => x.refunds[0].status === 'SUCCEEDED' && x.refundedAmount === 400);
        expect(final.refunds).toHaveLength(1);
        const atAlipay = sim.store.refundsOf(trade(o.paymentNo));
        expect(atAlipay).toHaveLength(1);
        expect(atAlipay[0]).toMatchObject({ out_request_no: r.refundNo, amount: 400 });
      } finally {
        provider.refund = original;
      }
    });

    // Regression: Alipay's refund query answers without refund_status for a refund it never received; the follow-up
    // must send it again with the same out_request_no instead of waiting forever.
    it('a refund whose request never reached Alipay is re-sent with the same number', async () => {
      const o = await paidOrder();
      const provider = t.app.services.payments.provider('default', 'ALIPAY_QR' as never);
      const original = provider.refund.bind(provider);
      let calls = 0;
      // The connection fails before Alipay sees anything.
      provider.refund = async (input) => {
        if (++calls === 1) throw new ProviderNetworkError('Alipay request alipay.trade.refund failed: ECONNRESET', 'alipay');
        return original(input);
      };
      try {
        const r = (await refund({ orderId: o.id, amount: 500 })).data.refundOrder;
        expect(r.status).toBe('PENDING');
        // The order row and its refunds are read one after the other in a query: wait for both to show the end.
        const final = await eventually(() => order(o.id), (x) => x.refunds[0].status === 'SUCCEEDED' && x.refundedAmount === 500, 6000);
        expect(final.refunds).toHaveLength(1);
        expect(sim.store.refundsOf(trade(o.paymentNo))).toEqual([expect.objectContaining({ out_request_no: r.refundNo })]);
      } finally {
        provider.refund = original;
      }
    });
  });
});
