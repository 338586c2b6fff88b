import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { OutboxMessage } from '../../src/realtime/outbox';
import { orderTopic } from '../../src/realtime/topics';
import { DEFAULT_MERCHANT_ID } from '../../src/shared/db/entity';
import { WechatPayStore, type WechatPaySimulator } from '../../src/simulators/wechatpay';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { eventually } from '../helpers/lifecycle';
import { TEST_REDIS_URL } from '../helpers/services';
import { PAYMENT_STATUS_SUBSCRIPTION, Subscriber } from '../helpers/ws';

const PAY = `mutation($input: PayOrderInput!) { payOrder(input: $input) {
  payment { id paymentNo channel status amount currency expiresAt providerTransactionId }
  qrCodeUrl qrCodeImage redirectUrl jsapiParams clientSecret } }`;

/** SQLite with in-process pub/sub (the embedded default), and PostgreSQL with the Redis bridge (production). */
const setups: Array<[string, 'sqlite' | 'postgresql', Record<string, string>]> = [['SQLite, in-process pub/sub', 'sqlite', {}]];
if (inject('postgres') && inject('redis')) setups.push(['PostgreSQL + Redis', 'postgresql', { REDIS_URL: TEST_REDIS_URL }]);

describe.each(setups)('paying with WeChat Pay on %s: payOrder, the simulator, the callback, the subscription', (_name, db, env) => {
  let t: TestApp;
  let sim: WechatPaySimulator;
  let admin: string;
  let alice: string;
  const subscribers: Subscriber[] = [];

  beforeAll(async () => {
    t = await startTestApp(db, { SIMULATOR_TIME_SCALE: '1000', ...env });
    sim = t.app.providers.simulator.wechatpay!;
    admin = t.token('root', 'admin');
    alice = t.token('alice');
    const res = await t.gql(`mutation { createProduct(input: { sku: "TEA", name: "Tea", priceAmount: 12800, stock: 1000 }) { id } }`, {}, admin);
    expect(res.errors).toBeUndefined();
  });
  afterAll(async () => {
    await Promise.all(subscribers.map((s) => s.close()));
    await t?.close();
  });

  const subscribe = (token: string | null, orderId: string) => {
    const s = new Subscriber(t.url, token, PAYMENT_STATUS_SUBSCRIPTION, { orderId });
    subscribers.push(s);
    return s;
  };
  const newOrder = async (token = alice) => {
    const res = await t.gql(`mutation { createOrder(input: { items: [{ sku: "TEA", quantity: 1 }] }) { id orderNo totalAmount } }`, {}, token);
    expect(res.errors).toBeUndefined();
    return res.data.createOrder as { id: string; orderNo: string; totalAmount: number };
  };
  const pay = (orderId: string, channel: string, extra: Record<string, unknown> = {}, token = alice) =>
    t.gql(PAY, { input: { orderId, channel, ...extra } }, token);
  const simulatorPay = async (body: Record<string, unknown>) =>
    fetch(`${t.url}/simulator/wechatpay/pay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const orderState = async (id: string) =>
    (await t.gql(`query($id: ID!) { order(id: $id) { status paidAmount paidAt payments { paymentNo status providerTransactionId } history { to actor } } }`, { id }, admin)).data.order;
  const notifications = async (flagged?: boolean) =>
    (await t.gql(`query($f: Boolean) { paymentNotifications(flagged: $f, first: 100) { edges { node { provider notificationId paymentNo outcome flagged reason } } } }`, { f: flagged }, admin)).data.paymentNotifications.edges.map((e: any) => e.node);

  it('Native: QR, same QR again, pay in the simulator, the subscriber sees PAID', async () => {
    const order = await newOrder();
    const sub = subscribe(alice, order.id);
    await sub.until((s) => s.events.length >= 1);
    expect(sub.events[0].paymentStatusChanged).toMatchObject({ orderId: order.id, orderStatus: 'PENDING_PAYMENT', paymentStatus: null });

    const first = await pay(order.id, 'WECHAT_NATIVE');
    expect(first.errors).toBeUndefined();
    const session = first.data.payOrder;
    expect(session.qrCodeUrl).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
    expect(session.qrCodeImage).toMatch(/^data:image\/png;base64,/);
    expect(session.payment).toMatchObject({ channel: 'WECHAT_NATIVE', status: 'PENDING', amount: order.totalAmount, currency: 'CNY' });
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAYING'));

    const again = (await pay(order.id, 'WECHAT_NATIVE')).data.payOrder;
    expect(again.payment.paymentNo).toBe(session.payment.paymentNo);
    expect(again.qrCodeUrl).toBe(session.qrCodeUrl);
    expect(sim.store.find({ out_trade_no: session.payment.paymentNo })).toBeTruthy();

    const scan = await fetch(sim.scanUrl(session.qrCodeUrl));
    expect(scan.status).toBe(200);
    expect(await scan.text()).toContain('128.00');

    const paid = await simulatorPay({ code_url: session.qrCodeUrl, outcome: 'SUCCESS' });
    expect(paid.status).toBe(200);
    const paidAt = Date.now();
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'), 2000);
    expect(Date.now() - paidAt).toBeLessThan(1000);
    const event = sub.events.at(-1).paymentStatusChanged;
    expect(event).toMatchObject({ orderStatus: 'PAID', paymentStatus: 'SUCCEEDED', paymentNo: session.payment.paymentNo, channel: 'WECHAT_NATIVE', paidAmount: order.totalAmount });

    const state = await orderState(order.id);
    expect(state).toMatchObject({ status: 'PAID', paidAmount: order.totalAmount });
    expect(state.payments[0]).toMatchObject({ status: 'SUCCEEDED', providerTransactionId: expect.stringMatching(/^42/) });
    expect(state.history.map((h: any) => h.to)).toEqual(['PENDING_PAYMENT', 'PAYING', 'PAID']);
    expect(state.history.at(-1).actor).toBe('provider:wechatpay');
    expect(codeOf(await pay(order.id, 'WECHAT_NATIVE'))).toBe('ALREADY_PAID');

    const applied = (await notifications()).filter((n: any) => n.paymentNo === session.payment.paymentNo);
    expect(applied).toEqual([expect.objectContaining({ provider: 'wechatpay', outcome: 'applied', flagged: false })]);

    // A screen that subscribes after the payment learns it at once.
    const late = subscribe(alice, order.id);
    await late.until((s) => s.events.length >= 1, 2000);
    expect(late.events[0].paymentStatusChanged).toMatchObject({ orderStatus: 'PAID', paymentStatus: 'SUCCEEDED' });
  });

  it("a first payOrder saves its payment with the order's read (one statement on PostgreSQL); a payOrder refused saves none", async () => {
    const order = await newOrder();
    expect(codeOf(await pay(order.id, 'WECHAT_NATIVE', {}, t.token('mallory')))).toBe('NOT_FOUND');
    expect(codeOf(await pay(order.id, 'WECHAT_JSAPI'))).toBe('BAD_USER_INPUT');
    expect((await orderState(order.id)).payments).toEqual([]);

    const sent = vi.spyOn(pg.Client.prototype, 'query');
    let res;
    let texts: string[];
    try {
      res = await pay(order.id, 'WECHAT_NATIVE');
      texts = sent.mock.calls.map(([q]) => (typeof q === 'string' ? q : (q as { text?: string }).text ?? ''));
    } finally {
      sent.mockRestore();
    }
    expect(res.errors).toBeUndefined();
    const { payment } = res.data.payOrder;
    if (db === 'postgresql') {
      const inserts = texts.filter((q) => q.includes('insert into payments'));
      expect(inserts).toHaveLength(1);
      expect(inserts[0]).toContain('select * from orders where id');
      expect(texts.filter((q) => q.includes('from orders o left join payments'))).toEqual([]);
    }
    const { expiresAt } = (await t.gql(`query($id: ID!) { order(id: $id) { expiresAt } }`, { id: order.id }, alice)).data.order;
    expect(payment).toMatchObject({ channel: 'WECHAT_NATIVE', status: 'PENDING', amount: order.totalAmount, currency: 'CNY', expiresAt });
    expect((await orderState(order.id)).payments).toEqual([expect.objectContaining({ paymentNo: payment.paymentNo, status: 'PENDING' })]);
    expect(sim.store.find({ out_trade_no: payment.paymentNo })).toBeTruthy();

    const cancelled = await newOrder();
    expect((await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id: cancelled.id }, alice)).errors).toBeUndefined();
    expect(codeOf(await pay(cancelled.id, 'WECHAT_NATIVE'))).toBe('INVALID_TRANSITION');
    expect((await orderState(cancelled.id)).payments).toEqual([]);
  });

  it("a callback's event is stored in the outbox exactly as it is published (what the sweep sends when the publish fails)", async () => {
    // On PostgreSQL the callback is applied by one statement that writes the payment, order, history, inbox and
    // outbox rows and builds the event's payload itself (PaymentsService.applySuccessAtOnce): it must be that one
    // statement, and the row it wrote must be the event published from memory after it.
    const order = await newOrder();
    const session = (await pay(order.id, 'WECHAT_NATIVE')).data.payOrder;
    const topic = orderTopic(order.id);
    const pubsub = t.app.pubsub;
    const publish = pubsub.publish.bind(pubsub);
    let published: Record<string, unknown> | undefined;
    pubsub.publish = async (to, payload) => {
      if (to === topic && (payload as { orderStatus?: string }).orderStatus === 'PAID') {
        published = payload as Record<string, unknown>;
        throw new Error('Connection is closed.');
      }
      return publish(to, payload);
    };
    // What the service sends to PostgreSQL meanwhile: the callback's rows should all come from that one statement.
    const sent = vi.spyOn(pg.Client.prototype, 'query');
    try {
      expect((await simulatorPay({ code_url: session.qrCodeUrl, outcome: 'SUCCESS' })).status).toBe(200);
      await eventually(async () => published, (p) => p !== undefined);
      if (db === 'postgresql') {
        const texts = sent.mock.calls.map(([q]) => (typeof q === 'string' ? q : (q as { text?: string }).text ?? ''));
        const inboxWrites = texts.filter((q) => q.includes('insert into payment_notifications'));
        expect(inboxWrites).toHaveLength(1);
        for (const table of ['update payments', 'update orders', 'insert into order_events', 'insert into outbox']) {
          expect(inboxWrites[0]).toContain(table);
        }
        // …with the payment's read in it: the general path reads the payment with its order first.
        expect(texts.filter((q) => q.includes('from payments p join orders o'))).toEqual([]);
      }
      const rows = await t.app.orm.em.fork().find(OutboxMessage, { topic });
      // (The PAYING event's row may still be there: published rows are deleted in batches.)
      expect(rows.map((r) => r.payload).filter((p) => (p as { orderStatus: string }).orderStatus === 'PAID')).toEqual([published]);
      expect(published).toMatchObject({
        orderId: order.id,
        orderNo: order.orderNo,
        orderStatus: 'PAID',
        paymentId: session.payment.id,
        paymentNo: session.payment.paymentNo,
        paymentStatus: 'SUCCEEDED',
        channel: 'WECHAT_NATIVE',
        totalAmount: order.totalAmount,
        paidAmount: order.totalAmount,
        refundedAmount: 0,
      });
      expect(new Date(published!.occurredAt as string).toISOString()).toBe(published!.occurredAt);
    } finally {
      sent.mockRestore();
      pubsub.publish = publish;
    }
    const state = await orderState(order.id);
    expect(state.history.map((h: { to: string }) => h.to)).toEqual(['PENDING_PAYMENT', 'PAYING', 'PAID']);
    expect(state.payments[0]).toMatchObject({ status: 'SUCCEEDED', providerTransactionId: expect.any(String) });
    expect((await notifications()).filter((n: { paymentNo: string }) => n.paymentNo === session.payment.paymentNo)).toEqual([
      expect.objectContaining({ provider: 'wechatpay', outcome: 'applied', flagged: false }),
    ]);
  });

  it('only the owner or an admin may subscribe; a stranger gets an error and never an event', async () => {
    const order = await newOrder();
    const stranger = subscribe(t.token('mallory'), order.id);
    await stranger.until((s) => s.errors.length > 0 || s.completed, 3000);
    expect(stranger.events).toEqual([]);
    expect(JSON.stringify(stranger.errors)).toContain('NOT_FOUND');
    const anonymous = subscribe(null, order.id);
    await anonymous.until((s) => s.errors.length > 0, 3000);
    expect(anonymous.events).toEqual([]);
    const asAdmin = subscribe(admin, order.id);
    await asAdmin.until((s) => s.events.length >= 1, 3000);
    expect(asAdmin.events[0].paymentStatusChanged.orderId).toBe(order.id);
    expect(codeOf(await pay(order.id, 'WECHAT_NATIVE', {}, t.token('mallory')))).toBe('NOT_FOUND');
  });

  it('paid before the create call returned: the callback stands, payOrder answers the session, no PAYING after PAID', async () => {
    const order = await newOrder();
    const sub = subscribe(alice, order.id);
    await sub.until((s) => s.events.length >= 1);
    // The customer pays and the notification is applied while payOrder still waits for WeChat Pay's answer.
    const provider = t.app.providers.registry.byName(DEFAULT_MERCHANT_ID, 'wechatpay')!;
    const create = provider.createPayment.bind(provider);
    provider.createPayment = async (input) => {
      const created = await create(input);
      expect((await simulatorPay({ out_trade_no: input.paymentNo, outcome: 'SUCCESS' })).status).toBe(200);
      await eventually(() => orderState(order.id), (o) => o.status === 'PAID');
      return created;
    };
    try {
      const res = await pay(order.id, 'WECHAT_NATIVE');
      expect(res.errors).toBeUndefined();
      expect(res.data.payOrder.qrCodeUrl).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
    } finally {
      provider.createPayment = create;
    }
    const state = await orderState(order.id);
    expect(state).toMatchObject({ status: 'PAID', paidAmount: order.totalAmount });
    expect(state.payments).toEqual([expect.objectContaining({ status: 'SUCCEEDED' })]);
    expect(state.history.map((h: any) => h.to)).toEqual(['PENDING_PAYMENT', 'PAYING', 'PAID']);
    expect(state.history.at(-1).actor).toBe('provider:wechatpay');
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'));
    await new Promise((r) => setTimeout(r, 200));
    expect(sub.events.map((e) => e.paymentStatusChanged.orderStatus)).toEqual(['PENDING_PAYMENT', 'PAID']);
  });

  it('a screen that stops listening (complete, or its socket closed) releases its subscription', async () => {
    const held = async () => {
      const text = await (await fetch(`${t.url}/metrics`)).text();
      return Number(/^graphql_active_subscriptions (\d+)/m.exec(text)?.[1]);
    };
    const before = await held();
    const order = await newOrder();
    const completing = subscribe(alice, order.id);
    const closing = subscribe(alice, order.id);
    await completing.until((s) => s.events.length >= 1);
    await closing.until((s) => s.events.length >= 1);
    expect(await held()).toBe(before + 2);
    completing.unsubscribe();
    await eventually(held, (n) => n === before + 1);
    await closing.close();
    await eventually(held, (n) => n === before);
    // The order's events still reach a screen subscribed afterwards.
    const again = subscribe(alice, order.id);
    await again.until((s) => s.events.length >= 1);
    await pay(order.id, 'WECHAT_NATIVE');
    await again.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAYING'));
    expect(completing.events.map((e) => e.paymentStatusChanged.orderStatus)).toEqual(['PENDING_PAYMENT']);
  });

  it('JSAPI answers signed wx.requestPayment parameters; H5 a redirect URL', async () => {
    const order = await newOrder();
    expect(codeOf(await pay(order.id, 'WECHAT_JSAPI'))).toBe('BAD_USER_INPUT');
    const jsapi = (await pay(order.id, 'WECHAT_JSAPI', { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' })).data.payOrder;
    const params = JSON.parse(jsapi.jsapiParams);
    expect(params).toMatchObject({ appId: expect.any(String), package: expect.stringMatching(/^prepay_id=wx/), signType: 'RSA', paySign: expect.any(String) });

    // Switching channel closes the JSAPI payment at the provider first.
    const h5 = (await pay(order.id, 'WECHAT_H5', { clientIp: '203.0.113.7' })).data.payOrder;
    expect(h5.redirectUrl).toContain('/simulator/wechatpay/h5?prepay_id=');
    const old = sim.store.find({ out_trade_no: jsapi.payment.paymentNo });
    expect(old ? WechatPayStore.toWire(old).trade_state : 'gone').toBe('CLOSED');
    const state = await orderState(order.id);
    expect(state.payments.map((p: any) => p.status)).toEqual(['CLOSED', 'PENDING']);
  });

  describe('callbacks', () => {
    let order: { id: string; totalAmount: number };
    let paymentNo: string;
    let mchid: string;

    beforeAll(async () => {
      order = await newOrder();
      const session = (await pay(order.id, 'WECHAT_NATIVE')).data.payOrder;
      paymentNo = session.payment.paymentNo;
      mchid = sim.store.find({ out_trade_no: paymentNo })!.mchid;
    });

    const transaction = (over: Record<string, unknown> = {}) => {
      const tx = WechatPayStore.toWire(sim.store.find({ out_trade_no: paymentNo })!);
      return { ...tx, trade_state: 'SUCCESS', trade_state_desc: '支付成功', transaction_id: '4200000000000000000000000001', success_time: new Date().toISOString(), ...over };
    };
    const deliver = (rawBody: string, headers: Record<string, string>) =>
      fetch(`${t.url}/notify/wechatpay`, { method: 'POST', headers, body: rawBody });

    it('forged, stale, tampered, SIGNTEST and unknown-serial notifications are refused with 4xx and change nothing', async () => {
      const n = sim.buildNotification(mchid, { eventType: 'TRANSACTION.SUCCESS', resource: transaction() });
      const forged = { ...n.headers, 'wechatpay-signature': Buffer.alloc(256, 1).toString('base64') };
      const stale = sim.buildNotification(mchid, { eventType: 'TRANSACTION.SUCCESS', resource: transaction() }, { timestamp: Math.floor(Date.now() / 1000) - 301 });
      const probe = sim.buildNotification(mchid, { eventType: 'TRANSACTION.SUCCESS', resource: transaction() }, { signature: 'WECHATPAY/SIGNTEST/abc' });
      const serial = sim.buildNotification(mchid, { eventType: 'TRANSACTION.SUCCESS', resource: transaction() }, { serial: 'PUB_KEY_ID_0000000000000000000000000000' });
      const body = JSON.parse(n.rawBody);
      body.resource.ciphertext = Buffer.from(Buffer.from(body.resource.ciphertext, 'base64').map((b, i) => (i === 3 ? b ^ 1 : b))).toString('base64');
      const tamperedRaw = JSON.stringify(body);
      const tampered = sim.signNotification(tamperedRaw);
      for (const [raw, headers] of [
        [n.rawBody, forged],
        [stale.rawBody, stale.headers],
        [probe.rawBody, probe.headers],
        [serial.rawBody, serial.headers],
        [tamperedRaw, tampered],
        [n.rawBody.replace('"id":"', '"id":"x'), n.headers],
      ] as Array<[string, Record<string, string>]>) {
        const res = await deliver(raw, headers);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect(await res.json()).toMatchObject({ code: 'FAIL' });
      }
      expect((await orderState(order.id)).status).toBe('PAYING');
      const rejected = (await notifications()).filter((x: any) => x.outcome === 'rejected');
      expect(rejected.length).toBeGreaterThanOrEqual(6);
    });

    it('a body over 256 KB is refused with 413 before it is read further; an unknown provider path is 404; neither is recorded', async () => {
      const before = (await notifications()).length;
      const n = sim.buildNotification(mchid, { eventType: 'TRANSACTION.SUCCESS', resource: transaction() });
      const huge = n.rawBody.replace('"id":"', `"padding":"${'x'.repeat(300 * 1024)}","id":"`);
      const tooBig = await deliver(huge, sim.signNotification(huge));
      expect(tooBig.status).toBe(413);
      expect(await tooBig.json()).toMatchObject({ code: 'FAIL' });
      const unknown = await fetch(`${t.url}/notify/paypal`, { method: 'POST', headers: n.headers, body: n.rawBody });
      expect(unknown.status).toBe(404);
      expect((await orderState(order.id)).status).toBe('PAYING');
      expect(await notifications()).toHaveLength(before);
    });

    it('verified but mismatched (amount, unknown order, other merchant) is flagged, refused, and changes nothing', async () => {
      const cases = [
        transaction({ amount: { total: order.totalAmount - 1, payer_total: order.totalAmount - 1, currency: 'CNY' } }),
        transaction({ out_trade_no: 'P00000000000000000000000000' }),
        transaction({ mchid: '1900000000' }),
      ];
      for (const resource of cases) {
        const n = sim.buildNotification(mchid, { eventType: 'TRANSACTION.SUCCESS', resource });
        const res = await deliver(n.rawBody, n.headers);
        expect(res.status).toBe(400);
      }
      expect((await orderState(order.id)).status).toBe('PAYING');
      const flagged = await notifications(true);
      expect(flagged.map((f: any) => f.reason)).toEqual(
        expect.arrayContaining([expect.stringContaining('amount'), expect.stringContaining('unknown payment'), expect.stringContaining('mchid')]),
      );
      expect(flagged.every((f: any) => f.outcome === 'flagged' && f.flagged)).toBe(true);
    });

    it('10 concurrent copies of one notification: one transition into PAID, one event, all acknowledged', async () => {
      const sub = subscribe(alice, order.id);
      await sub.until((s) => s.events.length >= 1);
      const n = sim.buildNotification(mchid, { eventType: 'TRANSACTION.SUCCESS', resource: transaction() });
      const replies = await Promise.all(
        Array.from({ length: 10 }, () => deliver(n.rawBody, sim.signNotification(n.rawBody))),
      );
      expect(replies.map((r) => r.status)).toEqual(Array(10).fill(204));
      await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'));
      await new Promise((r) => setTimeout(r, 300));
      expect(sub.events.filter((e) => e.paymentStatusChanged.orderStatus === 'PAID')).toHaveLength(1);
      const state = await orderState(order.id);
      expect(state.history.filter((h: any) => h.to === 'PAID')).toHaveLength(1);
      const rows = (await notifications()).filter((x: any) => x.notificationId === n.id);
      expect(rows.filter((r: any) => r.outcome === 'applied')).toHaveLength(1);
      expect(rows.filter((r: any) => r.outcome === 'duplicate')).toHaveLength(9);
    });
  });
});
