import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentChannel } from '../../src/payments/channels';
import { ProviderNetworkError, ProviderRejectedError, ProviderSignatureError } from '../../src/payments/providers/errors';
import type { CreatePaymentInput, ParsedNotification } from '../../src/payments/providers/provider';
import { WechatPayProvider, type WechatPayConfig } from '../../src/payments/providers/wechatpay';
import { generateRsaKeyPair } from '../../src/simulators/shared/credentials';
import {
  createWechatPaySimulator,
  generateMerchantCredentials,
  type MerchantCredentials,
  type WechatPaySimulator,
} from '../../src/simulators/wechatpay';
import { closedPort, rejection, SimulatorHarness, waitFor } from '../helpers/simulator-harness';

const harness = new SimulatorHarness();
const { app, postJson } = harness;
let origin: string;
let sim: WechatPaySimulator;
/** A second simulator that reuses sim's key id with a different key: its answers are signed with the wrong key. */
let impostor: WechatPaySimulator;
/** A third one with its own key id. */
let stranger: WechatPaySimulator;
let local: WechatPaySimulator;
let creds: MerchantCredentials;
let config: WechatPayConfig;
let adapter: WechatPayProvider;

/** Notifications received per tag (`/notify/wechatpay/:tag`), and statuses to answer before the default 204. */
const { inbox, scripted } = harness.notifyReceiver<number>('/notify/wechatpay', (res, status) => {
  res.status(status ?? 204).end();
});

let seq = 0;
const paymentNo = () => `P${Date.now()}${String(++seq).padStart(4, '0')}`;
const notifyUrl = (tag: string) => `${origin}/notify/wechatpay/${tag}`;

function input(over: Partial<CreatePaymentInput> = {}): CreatePaymentInput {
  return {
    channel: PaymentChannel.WECHAT_NATIVE,
    paymentNo: paymentNo(),
    amount: 8800,
    currency: 'CNY',
    description: 'Order O-1: 2 × green tea',
    expiresAt: new Date(Date.now() + 15 * 60_000),
    notifyUrl: notifyUrl('default'),
    ...over,
  };
}

beforeAll(async () => {
  harness.mount('/simulator/wechatpay', () => sim?.router);
  harness.mount('/impostor/wechatpay', () => impostor?.router);
  harness.mount('/stranger/wechatpay', () => stranger?.router);
  harness.mount('/local/wechatpay', () => local?.router);
  // Misbehaving "WeChat Pay" endpoints.
  app.use('/unsigned', (_req, res) => {
    res.status(200).json({ code_url: 'weixin://wxpay/bizpayurl?pr=forged' });
  });
  app.use('/unsigned-4xx', (_req, res) => {
    res.status(400).json({ code: 'ORDER_PAID', message: 'forged' });
  });
  app.use('/broken', (_req, res) => {
    res.status(502).send('bad gateway');
  });
  app.use('/hang', () => {
    /* never answers */
  });

  origin = await harness.listen();

  sim = createWechatPaySimulator({ publicBaseUrl: origin, timeScale: 1000 });
  impostor = createWechatPaySimulator({ publicBaseUrl: origin, mountPath: '/impostor/wechatpay', publicKeyId: sim.publicKeyId });
  stranger = createWechatPaySimulator({ publicBaseUrl: origin, mountPath: '/stranger/wechatpay' });

  creds = generateMerchantCredentials();
  config = sim.adapterConfig(creds, { timeoutMs: 3000 });
  adapter = new WechatPayProvider(config);
  impostor.registerMerchant(creds);
  stranger.registerMerchant(creds);
});

afterAll(async () => {
  sim?.close();
  impostor?.close();
  stranger?.close();
  local?.close();
  await harness.close();
});

describe('create', () => {
  it('Native: answers code_url; the same request again is idempotent, a different amount is refused', async () => {
    const req = input();
    const created = await adapter.createPayment(req);
    expect(created.qrCodeUrl).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=\w+$/);
    expect(created.raw).toEqual({ code_url: created.qrCodeUrl });

    const tx = sim.store.transaction(creds.mchid, req.paymentNo)!;
    expect(tx).toMatchObject({ trade_type: 'NATIVE', total: 8800, currency: 'CNY', appid: creds.appid, notify_url: req.notifyUrl });
    expect(tx.expiresAt).toBe(Math.floor(req.expiresAt.getTime() / 1000) * 1000);

    expect((await adapter.createPayment(req)).qrCodeUrl).toBe(created.qrCodeUrl);
    const err = await rejection(adapter.createPayment({ ...req, amount: 100 }));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: 'INVALID_REQUEST', httpStatus: 400 });
  });

  it('truncates a long description to 127 characters and keeps special out_trade_no characters', async () => {
    const req = input({ description: '茶'.repeat(200), paymentNo: `P-${seq++}|x*_${Date.now()}` });
    await adapter.createPayment(req);
    expect(sim.store.transaction(creds.mchid, req.paymentNo)!.description).toBe('茶'.repeat(127));
    expect((await adapter.queryPayment(req)).state).toBe('PENDING');
  });

  it('JSAPI: prepay_id and wx.requestPayment params whose paySign verifies with the merchant key', async () => {
    const created = await adapter.createPayment(input({ channel: PaymentChannel.WECHAT_JSAPI, openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }));
    expect(created.providerReference).toMatch(/^wx\w+$/);
    const p = created.jsapiParams!;
    expect(p).toMatchObject({ appId: creds.appid, package: `prepay_id=${created.providerReference}`, signType: 'RSA' });
    expect(p.timeStamp).toMatch(/^\d{10}$/);
    const message = `${p.appId}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`;
    expect(nodeVerify('sha256', Buffer.from(message), createPublicKey(creds.merchantPublicKey), Buffer.from(p.paySign, 'base64'))).toBe(true);
  });

  it('JSAPI without openid and H5 without client IP are refused before calling WeChat Pay', async () => {
    for (const req of [input({ channel: PaymentChannel.WECHAT_JSAPI }), input({ channel: PaymentChannel.WECHAT_H5 })]) {
      const err = await rejection(adapter.createPayment(req));
      expect(err).toBeInstanceOf(ProviderRejectedError);
      expect(err).toMatchObject({ providerCode: 'PARAM_ERROR' });
      expect(sim.store.transaction(creds.mchid, req.paymentNo)).toBeUndefined();
    }
  });

  it('H5: h5_url leads to the phone page, which can pay it', async () => {
    const req = input({ channel: PaymentChannel.WECHAT_H5, clientIp: '203.0.113.7', amount: 1999 });
    const created = await adapter.createPayment(req);
    expect(created.redirectUrl).toMatch(new RegExp(`^${sim.baseUrl}/h5\\?prepay_id=wx\\w+$`));
    expect(sim.store.transaction(creds.mchid, req.paymentNo)!.payerClientIp).toBe('203.0.113.7');
    const page = await fetch(created.redirectUrl!);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('¥19.99');
    expect(html).not.toMatch(/<(link|script)[^>]+(src|href)=/);

    const prepayId = new URL(created.redirectUrl!).searchParams.get('prepay_id');
    const paid = await postJson('/simulator/wechatpay/pay', { prepay_id: prepayId, outcome: 'SUCCESS', notify: false });
    expect(paid).toMatchObject({ status: 200, body: { out_trade_no: req.paymentNo, trade_state: 'SUCCESS' } });
  });
});

describe('query, pay and notify', () => {
  it('NOTPAY → PENDING, then SUCCESS after /pay; the notification verifies and maps', async () => {
    const req = input({ notifyUrl: notifyUrl('paid') });
    const created = await adapter.createPayment(req);
    expect(await adapter.queryPayment(req)).toMatchObject({ state: 'PENDING', raw: { trade_state: 'NOTPAY' } });

    const scan = await fetch(sim.scanUrl(created.qrCodeUrl!));
    expect(scan.status).toBe(200);
    const html = await scan.text();
    expect(html).toContain('¥88.00');
    expect(html).toContain('Order O-1: 2 × green tea');

    const paid = await postJson('/simulator/wechatpay/pay', { code_url: created.qrCodeUrl, outcome: 'SUCCESS' });
    expect(paid.status).toBe(200);
    const transactionId = paid.body.transaction_id as string;
    expect(transactionId).toMatch(/^4200\d{24}$/);

    const q = await adapter.queryPayment(req);
    expect(q).toMatchObject({ state: 'SUCCEEDED', providerTransactionId: transactionId, amount: 8800 });
    expect(q.paidAt).toBeInstanceOf(Date);
    expect(Math.abs(q.paidAt!.getTime() - Date.now())).toBeLessThan(5000);

    const [n] = await waitFor(() => inbox.get('paid'));
    const body = JSON.parse(n.rawBody.toString());
    expect(body).toMatchObject({
      resource_type: 'encrypt-resource',
      event_type: 'TRANSACTION.SUCCESS',
      summary: '支付成功',
      resource: { original_type: 'transaction', algorithm: 'AEAD_AES_256_GCM', associated_data: 'transaction' },
    });
    expect(body.create_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
    expect(n.headers['wechatpay-serial']).toBe(sim.publicKeyId);

    const parsed = await adapter.parseNotification(n);
    expect(parsed).toMatchObject({
      ok: true,
      notificationId: body.id,
      event: { type: 'payment', status: 'SUCCEEDED', paymentNo: req.paymentNo, providerTransactionId: transactionId, amount: 8800, currency: 'CNY' },
      payload: { mchid: creds.mchid, appid: creds.appid, trade_state: 'SUCCESS' },
    });
    expect((parsed as Extract<ParsedNotification, { ok: true }>).mismatch).toBeUndefined();
    const attempts = await waitFor(() => {
      const a = sim.notifications.filter((x) => x.notificationId === body.id);
      return a.length > 0 && a;
    });
    expect(attempts).toMatchObject([{ attempt: 1, status: 204, acknowledged: true, label: 'TRANSACTION.SUCCESS', url: req.notifyUrl }]);

    // Paying twice is refused.
    expect((await postJson('/simulator/wechatpay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS' })).status).toBe(409);
  });

  it('PAYERROR reads FAILED and is not notified; notify:false records a success silently', async () => {
    const failed = input({ notifyUrl: notifyUrl('payerror') });
    await adapter.createPayment(failed);
    expect((await postJson('/simulator/wechatpay/pay', { out_trade_no: failed.paymentNo, outcome: 'PAYERROR' })).body.trade_state).toBe('PAYERROR');
    expect((await adapter.queryPayment(failed)).state).toBe('FAILED');

    const silent = input({ notifyUrl: notifyUrl('silent') });
    await adapter.createPayment(silent);
    expect((await postJson('/simulator/wechatpay/pay', { out_trade_no: silent.paymentNo, outcome: 'SUCCESS', notify: false })).status).toBe(200);
    expect((await adapter.queryPayment(silent)).state).toBe('SUCCEEDED');
    await new Promise((r) => setTimeout(r, 100));
    expect(inbox.get('payerror')).toBeUndefined();
    expect(inbox.get('silent')).toBeUndefined();
  });

  it('an unknown payment is NOT_FOUND; /pay of an unknown code is 404', async () => {
    expect((await adapter.queryPayment({ channel: PaymentChannel.WECHAT_NATIVE, paymentNo: 'NOPE000001' })).state).toBe('NOT_FOUND');
    expect((await postJson('/simulator/wechatpay/pay', { code_url: 'weixin://wxpay/bizpayurl?pr=nope', outcome: 'SUCCESS' })).status).toBe(404);
  });

  it('retries on the WeChat schedule until a 2xx: 500, 500, 204 → exactly 3 deliveries, same id, fresh signatures', async () => {
    scripted.set('retry', [500, 500]);
    const req = input({ notifyUrl: notifyUrl('retry') });
    await adapter.createPayment(req);
    await postJson('/simulator/wechatpay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS' });

    const got = await waitFor(() => (inbox.get('retry')?.length ?? 0) >= 3 && inbox.get('retry'));
    await new Promise((r) => setTimeout(r, 200)); // a fourth would have come 30 ms after the third at ×1000
    expect(inbox.get('retry')).toHaveLength(3);
    const ids = got.map((n) => JSON.parse(n.rawBody.toString()).id);
    expect(new Set(ids).size).toBe(1);
    expect(new Set(got.map((n) => n.headers['wechatpay-nonce'])).size).toBe(3);
    for (const n of got) expect((await adapter.parseNotification(n)).ok).toBe(true);
    expect(sim.notifications.filter((a) => a.notificationId === ids[0]).map((a) => [a.attempt, a.status, a.acknowledged])).toEqual([
      [1, 500, false],
      [2, 500, false],
      [3, 204, true],
    ]);
  });

  it('redeliver sends the same notification again, freshly signed', async () => {
    const req = input({ notifyUrl: notifyUrl('redeliver') });
    await adapter.createPayment(req);
    await postJson('/simulator/wechatpay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS' });
    const [first] = await waitFor(() => inbox.get('redeliver'));
    const id = JSON.parse(first.rawBody.toString()).id as string;
    expect(sim.redeliver(id)).toBe(true);
    const both = await waitFor(() => (inbox.get('redeliver')?.length ?? 0) >= 2 && inbox.get('redeliver'));
    expect(both[1].rawBody.equals(first.rawBody)).toBe(true);
    expect(both[1].headers['wechatpay-nonce']).not.toBe(first.headers['wechatpay-nonce']);
    expect(await adapter.parseNotification(both[1])).toMatchObject({ ok: true, notificationId: id });
  });
});

describe('notification rejection (signed by the simulator, then broken)', () => {
  const transaction = () => ({
    mchid: creds.mchid,
    appid: creds.appid,
    out_trade_no: 'P-REJECT-1',
    transaction_id: '4200000000000000000000000002',
    trade_type: 'NATIVE',
    trade_state: 'SUCCESS',
    trade_state_desc: '支付成功',
    success_time: '2026-11-26T19:30:00+08:00',
    amount: { total: 100, payer_total: 100, currency: 'CNY', payer_currency: 'CNY' },
  });
  const parse = (rawBody: string, headers: Record<string, string>) => adapter.parseNotification({ rawBody: Buffer.from(rawBody), headers });

  it('accepts the genuine one', async () => {
    const n = sim.buildNotification(creds.mchid, { eventType: 'TRANSACTION.SUCCESS', resource: transaction() });
    expect(await parse(n.rawBody, n.headers)).toMatchObject({ ok: true, notificationId: n.id, event: { type: 'payment', amount: 100 } });
  });

  it('refuses a tampered body, a stale timestamp, a SIGNTEST probe, an unknown serial and a tampered ciphertext', async () => {
    const n = sim.buildNotification(creds.mchid, { eventType: 'TRANSACTION.SUCCESS', resource: transaction() });
    const stale = sim.signNotification(n.rawBody, { timestamp: Math.floor(Date.now() / 1000) - 600 });
    const probe = sim.signNotification(n.rawBody, { signature: 'WECHATPAY/SIGNTEST/dGVzdA==' });
    const otherSerial = stranger.signNotification(n.rawBody);
    const body = JSON.parse(n.rawBody);
    body.resource.ciphertext = Buffer.from(Buffer.from(body.resource.ciphertext, 'base64').map((b, i) => (i === 5 ? b ^ 1 : b))).toString('base64');
    const badCipher = JSON.stringify(body);

    const cases: Array<[string, Record<string, string>, RegExp]> = [
      [n.rawBody.replace('"summary":"支付成功"', '"summary":"支付成功!"'), n.headers, /invalid signature/],
      [n.rawBody, stale, /timestamp/],
      [n.rawBody, probe, /SIGNTEST/],
      [n.rawBody, otherSerial, /unknown serial/],
      [badCipher, sim.signNotification(badCipher), /decryption/],
    ];
    for (const [raw, headers, reason] of cases) {
      const r = await parse(raw, headers);
      expect(r.ok, String(reason)).toBe(false);
      expect(!r.ok && r.reason).toMatch(reason);
    }
    const reply = adapter.notificationReply(false, 'invalid signature');
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(reply.status).toBeLessThan(500);
  });

  it('flags a notification for another merchant id via mismatch', async () => {
    const n = sim.buildNotification(creds.mchid, { eventType: 'TRANSACTION.SUCCESS', resource: { ...transaction(), mchid: '1234567890' } });
    const r = await parse(n.rawBody, n.headers);
    expect(r.ok).toBe(true);
    expect(r.ok && r.mismatch).toMatch(/mchid 1234567890/);
  });
});

describe('close', () => {
  it('closes an unpaid payment: it reads CLOSED and can no longer be paid; closing again is fine', async () => {
    const req = input();
    const created = await adapter.createPayment(req);
    await adapter.closePayment(req);
    expect((await adapter.queryPayment(req)).state).toBe('CLOSED');
    expect((await postJson('/simulator/wechatpay/pay', { code_url: created.qrCodeUrl, outcome: 'SUCCESS' })).status).toBe(409);
    await adapter.closePayment(req);
    const scan = await (await fetch(sim.scanUrl(created.qrCodeUrl!))).text();
    expect(scan).toContain('closed');
  });

  it('a paid payment cannot be closed: ProviderRejectedError ORDER_PAID', async () => {
    const req = input();
    await adapter.createPayment(req);
    await postJson('/simulator/wechatpay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS', notify: false });
    const err = await rejection(adapter.closePayment(req));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: 'ORDER_PAID', httpStatus: 400, provider: 'wechatpay' });
  });

  it('a payment past its time_expire reads CLOSED and cannot be paid', async () => {
    const req = input({ expiresAt: new Date(Date.now() - 1000) });
    await adapter.createPayment(req);
    expect((await adapter.queryPayment(req)).state).toBe('CLOSED');
    expect((await postJson('/simulator/wechatpay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS' })).body.code).toBe('ORDER_CLOSED');
  });
});

describe('refunds', () => {
  async function paidPayment(total = 10_000) {
    const req = input({ amount: total });
    await adapter.createPayment(req);
    const paid = await postJson('/simulator/wechatpay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS', notify: false });
    return { req, transactionId: paid.body.transaction_id as string };
  }
  const refundInput = (paymentNo: string, refundNo: string, amount: number, tag = 'refund') => ({
    channel: PaymentChannel.WECHAT_NATIVE,
    paymentNo,
    refundNo,
    amount,
    totalAmount: 10_000,
    currency: 'CNY',
    reason: 'customer asked',
    notifyUrl: notifyUrl(tag),
  });

  it('refunds once per refundNo, queries it, and notifies REFUND.SUCCESS', async () => {
    sim.setRefundBehaviour('success');
    const { req } = await paidPayment();
    const r1 = await adapter.refund(refundInput(req.paymentNo, `R${req.paymentNo}`, 3000, 'refund-ok'));
    expect(r1).toMatchObject({ state: 'SUCCEEDED', raw: { status: 'SUCCESS', amount: { refund: 3000, total: 10_000 } } });
    expect(r1.providerRefundId).toMatch(/^50\d+$/);

    const again = await adapter.refund(refundInput(req.paymentNo, `R${req.paymentNo}`, 3000, 'refund-ok'));
    expect(again.providerRefundId).toBe(r1.providerRefundId);
    const tx = sim.store.transaction(creds.mchid, req.paymentNo)!;
    expect(sim.store.refundsOf(tx)).toHaveLength(1);
    expect(sim.store.refundable(tx)).toBe(7000);

    expect(await adapter.queryRefund({ channel: PaymentChannel.WECHAT_NATIVE, paymentNo: req.paymentNo, refundNo: `R${req.paymentNo}` })).toMatchObject({
      state: 'SUCCEEDED',
      providerRefundId: r1.providerRefundId,
    });
    expect((await adapter.queryPayment(req)).state).toBe('SUCCEEDED'); // trade_state REFUND: it was paid

    const [n] = await waitFor(() => inbox.get('refund-ok'));
    expect(await adapter.parseNotification(n)).toMatchObject({
      ok: true,
      event: { type: 'refund', status: 'SUCCEEDED', refundNo: `R${req.paymentNo}`, paymentNo: req.paymentNo, amount: 3000, providerRefundId: r1.providerRefundId },
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(inbox.get('refund-ok')).toHaveLength(1);
  });

  it('refuses more than what remains and a different amount under the same refundNo', async () => {
    sim.setRefundBehaviour('success');
    const { req } = await paidPayment();
    await adapter.refund(refundInput(req.paymentNo, `R1${req.paymentNo}`, 6000));
    const over = await rejection(adapter.refund(refundInput(req.paymentNo, `R2${req.paymentNo}`, 4001)));
    expect(over).toBeInstanceOf(ProviderRejectedError);
    expect(over).toMatchObject({ providerCode: 'INVALID_REQUEST', httpStatus: 400 });
    const changed = await rejection(adapter.refund(refundInput(req.paymentNo, `R1${req.paymentNo}`, 5000)));
    expect(changed).toMatchObject({ providerCode: 'INVALID_REQUEST' });
    expect(await adapter.refund(refundInput(req.paymentNo, `R3${req.paymentNo}`, 4000))).toMatchObject({ state: 'SUCCEEDED' });
  });

  it('scripted: PROCESSING for a while then SUCCESS; ABNORMAL ends FAILED with a REFUND.ABNORMAL notification', async () => {
    const { req } = await paidPayment();
    const ctl = await postJson('/simulator/wechatpay/control', { refundBehaviour: 'processing', refundDelayMs: 150 });
    expect(ctl).toMatchObject({ status: 200, body: { refundBehaviour: 'processing', refundDelayMs: 150 } });
    const ref = { channel: PaymentChannel.WECHAT_NATIVE, paymentNo: req.paymentNo, refundNo: `RP${req.paymentNo}` };
    expect(await adapter.refund(refundInput(req.paymentNo, ref.refundNo, 1000, 'refund-slow'))).toMatchObject({ state: 'PENDING' });
    expect(await adapter.queryRefund(ref)).toMatchObject({ state: 'PENDING' });
    await waitFor(() => inbox.get('refund-slow'));
    expect(await adapter.queryRefund(ref)).toMatchObject({ state: 'SUCCEEDED' });

    sim.setRefundBehaviour('abnormal');
    const abnormal = await adapter.refund(refundInput(req.paymentNo, `RA${req.paymentNo}`, 1000, 'refund-abnormal'));
    expect(abnormal).toMatchObject({ state: 'FAILED', raw: { status: 'ABNORMAL' } });
    const [n] = await waitFor(() => inbox.get('refund-abnormal'));
    expect(JSON.parse(n.rawBody.toString()).event_type).toBe('REFUND.ABNORMAL');
    expect(await adapter.parseNotification(n)).toMatchObject({ ok: true, event: { type: 'refund', status: 'FAILED' } });

    sim.setRefundBehaviour('processing');
    const stuck = { ...ref, refundNo: `RS${req.paymentNo}` };
    expect(await adapter.refund(refundInput(req.paymentNo, stuck.refundNo, 1000))).toMatchObject({ state: 'PENDING' });
    expect((await postJson('/simulator/wechatpay/control', { settleRefund: { mchid: creds.mchid, out_refund_no: stuck.refundNo, status: 'SUCCESS' } })).status).toBe(200);
    expect(await adapter.queryRefund(stuck)).toMatchObject({ state: 'SUCCEEDED' });
    sim.setRefundBehaviour('success');
  });

  it('refunding an unpaid payment is refused; an unknown refund query is refused', async () => {
    const req = input();
    await adapter.createPayment(req);
    expect(await rejection(adapter.refund(refundInput(req.paymentNo, `RU${req.paymentNo}`, 100)))).toBeInstanceOf(ProviderRejectedError);
    const err = await rejection(adapter.queryRefund({ channel: PaymentChannel.WECHAT_NATIVE, paymentNo: req.paymentNo, refundNo: 'R-NONE' }));
    expect(err).toMatchObject({ providerCode: 'RESOURCE_NOT_EXISTS', httpStatus: 404 });
  });
});

describe('transport failures', () => {
  const at = (path: string, over: Partial<WechatPayConfig> = {}) => new WechatPayProvider({ ...config, baseUrl: `${origin}${path}`, ...over });

  it('an answer signed with another key under the right key id → ProviderSignatureError', async () => {
    const err = await rejection(at('/impostor/wechatpay').createPayment(input()));
    expect(err).toBeInstanceOf(ProviderSignatureError);
  });

  it('an answer signed under a key id it was not given → ProviderSignatureError', async () => {
    expect(await rejection(at('/stranger/wechatpay').queryPayment(input()))).toBeInstanceOf(ProviderSignatureError);
  });

  it('unsigned answers, 2xx or 4xx, → ProviderSignatureError (a forged ORDER_PAID cannot steer the caller)', async () => {
    expect(await rejection(at('/unsigned').createPayment(input()))).toBeInstanceOf(ProviderSignatureError);
    expect(await rejection(at('/unsigned-4xx').closePayment(input()))).toBeInstanceOf(ProviderSignatureError);
  });

  it('5xx and refused connections → ProviderNetworkError', async () => {
    expect(await rejection(at('/broken').queryPayment(input()))).toBeInstanceOf(ProviderNetworkError);
    const port = await closedPort();
    const err = await rejection(new WechatPayProvider({ ...config, baseUrl: `http://127.0.0.1:${port}` }).queryPayment(input()));
    expect(err).toBeInstanceOf(ProviderNetworkError);
  });

  it('a server that hangs → ProviderNetworkError within timeoutMs', async () => {
    const started = Date.now();
    const err = await rejection(at('/hang', { timeoutMs: 300 }).queryPayment(input()));
    expect(err).toBeInstanceOf(ProviderNetworkError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('the simulator refuses a request signed with the wrong merchant key: 401 SIGN_ERROR (signed)', async () => {
    const wrongKey = new WechatPayProvider({ ...config, merchantPrivateKey: generateRsaKeyPair().privateKey });
    const err = await rejection(wrongKey.createPayment(input()));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: 'SIGN_ERROR', httpStatus: 401 });
    const wrongSerial = new WechatPayProvider({ ...config, merchantSerial: 'ABCDEF' });
    expect(await rejection(wrongSerial.queryPayment(input()))).toMatchObject({ providerCode: 'SIGN_ERROR' });
    const unknownMerchant = new WechatPayProvider({ ...config, mchid: '1000000001' });
    expect(await rejection(unknownMerchant.queryPayment(input()))).toMatchObject({ providerCode: 'SIGN_ERROR' });
  });
});

describe('simulator housekeeping', () => {
  it('close() cancels pending retries', async () => {
    local = createWechatPaySimulator({ publicBaseUrl: origin, mountPath: '/local/wechatpay', timeScale: 100 });
    const localAdapter = new WechatPayProvider(local.adapterConfig(creds));
    scripted.set('closing', [500, 500, 500, 500]);
    const req = input({ notifyUrl: notifyUrl('closing') });
    await localAdapter.createPayment(req);
    expect(local.pay({ out_trade_no: req.paymentNo, outcome: 'SUCCESS' })).toMatchObject({ ok: true });
    await waitFor(() => local.notifications.length === 1);
    local.close();
    await new Promise((r) => setTimeout(r, 400)); // the first retry was due 150 ms later
    expect(local.notifications).toHaveLength(1);
    expect(inbox.get('closing')).toHaveLength(1);
  });

  it('publicKeyId looks like WeChat Pay public key ids', () => {
    expect(sim.publicKeyId).toMatch(/^PUB_KEY_ID_\d+$/);
    expect(sim.publicKeyPem).toContain('BEGIN PUBLIC KEY');
  });
});
