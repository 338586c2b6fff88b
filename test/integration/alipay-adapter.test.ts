import { AlipaySdk } from 'alipay-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentChannel } from '../../src/payments/channels';
import { AlipayProvider, type AlipayConfig } from '../../src/payments/providers/alipay';
import { decodeForm, parseChinaDateTime } from '../../src/payments/providers/alipay/crypto';
import { ProviderNetworkError, ProviderRejectedError, ProviderSignatureError } from '../../src/payments/providers/errors';
import type { CreatePaymentInput, ParsedNotification, RefundInput } from '../../src/payments/providers/provider';
import {
  createAlipaySimulator,
  generateAlipayAppCredentials,
  type AlipayAppCredentials,
  type AlipaySimulator,
} from '../../src/simulators/alipay';
import { closedPort, rejection, SimulatorHarness, waitFor, type ReceivedNotification as Received } from '../helpers/simulator-harness';

const harness = new SimulatorHarness();
const { app, postJson } = harness;
let origin: string;
let sim: AlipaySimulator;
/** Another "Alipay" with its own key, serving the same app: its answers are signed with a key the adapter does not trust. */
let impostor: AlipaySimulator;
let local: AlipaySimulator;
let creds: AlipayAppCredentials;
let config: AlipayConfig;
let adapter: AlipayProvider;

/** Notifications received per tag (`/notify/alipay/:tag`), and bodies to answer before the default `success`. */
const { inbox, scripted } = harness.notifyReceiver<string>('/notify/alipay', (res, body) => {
  res.status(200).type('text/plain').send(body ?? 'success');
});

let seq = 0;
const paymentNo = () => `P${Date.now()}${String(++seq).padStart(4, '0')}`;
const notifyUrl = (tag: string) => `${origin}/notify/alipay/${tag}`;

function input(over: Partial<CreatePaymentInput> = {}): CreatePaymentInput {
  return {
    channel: PaymentChannel.ALIPAY_QR,
    paymentNo: paymentNo(),
    amount: 8800,
    currency: 'CNY',
    description: 'Order O-1: 2 × green tea',
    expiresAt: new Date(Date.now() + 15 * 60_000),
    notifyUrl: notifyUrl('default'),
    ...over,
  };
}

const params = (n: Received) => decodeForm(n.rawBody).params;

function parsedOk(r: ParsedNotification) {
  if (!r.ok) throw new Error(`expected ok, got ${r.reason}`);
  return r;
}

beforeAll(async () => {
  harness.mount('/simulator/alipay', () => sim?.router);
  harness.mount('/impostor/alipay', () => impostor?.router);
  harness.mount('/local/alipay', () => local?.router);
  app.get('/shop/return', (_req, res) => {
    res.send('back at the shop');
  });
  // Misbehaving "Alipay" gateways.
  app.use('/unsigned/gateway.do', (_req, res) => {
    res.status(200).json({ alipay_trade_precreate_response: { code: '10000', msg: 'Success', qr_code: 'https://qr.alipay.com/forged' } });
  });
  app.use('/unsigned-4xx/gateway.do', (_req, res) => {
    res.status(200).json({ alipay_trade_close_response: { code: '40004', msg: 'Business Failed', sub_code: 'ACQ.TRADE_NOT_EXIST' } });
  });
  app.use('/broken/gateway.do', (_req, res) => {
    res.status(502).send('bad gateway');
  });
  app.use('/hang/gateway.do', () => {
    /* never answers */
  });

  origin = await harness.listen();

  sim = createAlipaySimulator({ publicBaseUrl: origin, timeScale: 10_000 });
  impostor = createAlipaySimulator({ publicBaseUrl: origin, mountPath: '/impostor/alipay' });

  creds = generateAlipayAppCredentials();
  config = sim.adapterConfig(creds, { timeoutMs: 3000 });
  adapter = new AlipayProvider(config);
  impostor.registerApp({ appId: creds.appId, appPublicKey: creds.appPublicKey, sellerId: creds.sellerId });
});

afterAll(async () => {
  sim?.close();
  impostor?.close();
  local?.close();
  await harness.close();
});

describe('QR (alipay.trade.precreate)', () => {
  it('create → NOT_FOUND until scanned → PENDING → pay → the notification parses to SUCCEEDED → query SUCCEEDED', async () => {
    const req = input({ notifyUrl: notifyUrl('paid') });
    const created = await adapter.createPayment(req);
    expect(created.qrCodeUrl).toMatch(/^https:\/\/qr\.alipay\.com\/bax0\w+$/);
    expect(created.raw).toMatchObject({ code: '10000', out_trade_no: req.paymentNo, qr_code: created.qrCodeUrl });
    const trade = sim.store.trade(creds.appId, req.paymentNo)!;
    expect(trade).toMatchObject({ total: 8800, subject: req.description, product_code: 'FACE_TO_FACE_PAYMENT', notify_url: req.notifyUrl, status: 'UNSCANNED' });
    expect(trade.expiresAt).toBe(Math.floor(req.expiresAt.getTime() / 1000) * 1000);

    // Alipay does not know a precreated trade before the QR is scanned.
    expect(await adapter.queryPayment(req)).toMatchObject({ state: 'NOT_FOUND', raw: { sub_code: 'ACQ.TRADE_NOT_EXIST' } });

    const scan = await fetch(sim.scanUrl(created.qrCodeUrl!));
    expect(scan.status).toBe(200);
    const html = await scan.text();
    expect(html).toContain('¥88.00');
    expect(html).toContain('Order O-1: 2 × green tea');
    expect(html).not.toMatch(/<(link|script)[^>]+(src|href)=/);
    const waiting = await adapter.queryPayment(req);
    expect(waiting).toMatchObject({ state: 'PENDING', amount: 8800, raw: { trade_status: 'WAIT_BUYER_PAY' } });
    expect(waiting.providerTransactionId).toMatch(/^\d{8}22001\d{15}$/);

    const paid = await postJson('/simulator/alipay/pay', { qr_code: created.qrCodeUrl, outcome: 'SUCCESS' });
    expect(paid).toMatchObject({ status: 200, body: { out_trade_no: req.paymentNo, trade_status: 'TRADE_SUCCESS', trade_no: waiting.providerTransactionId } });

    const [n] = await waitFor(() => inbox.get('paid'));
    expect(n.headers['content-type']).toBe('application/x-www-form-urlencoded; charset=utf-8');
    const p = params(n);
    expect(p).toMatchObject({
      notify_type: 'trade_status_sync',
      sign_type: 'RSA2',
      charset: 'utf-8',
      version: '1.0',
      app_id: creds.appId,
      seller_id: creds.sellerId,
      out_trade_no: req.paymentNo,
      trade_no: waiting.providerTransactionId,
      total_amount: '88.00',
      trade_status: 'TRADE_SUCCESS',
    });
    expect(p.notify_id).toMatch(/^\d{34}$/);
    expect(p.buyer_id).toMatch(/^2088\d{12}$/);
    expect(Math.abs(parseChinaDateTime(p.notify_time)!.getTime() - Date.now())).toBeLessThan(5000);

    const parsed = parsedOk(await adapter.parseNotification(n));
    expect(parsed).toMatchObject({
      notificationId: p.notify_id,
      event: { type: 'payment', status: 'SUCCEEDED', paymentNo: req.paymentNo, providerTransactionId: waiting.providerTransactionId, amount: 8800, currency: 'CNY' },
    });
    expect(parsed.mismatch).toBeUndefined();
    const attempts = await waitFor(() => {
      const a = sim.notifications.filter((x) => x.notificationId === p.notify_id);
      return a.length > 0 && a;
    });
    expect(attempts).toMatchObject([{ attempt: 1, status: 200, acknowledged: true, label: 'TRADE_SUCCESS', url: req.notifyUrl }]);

    const q = await adapter.queryPayment(req);
    expect(q).toMatchObject({ state: 'SUCCEEDED', providerTransactionId: waiting.providerTransactionId, amount: 8800 });
    expect(Math.abs(q.paidAt!.getTime() - Date.now())).toBeLessThan(5000);

    expect(await postJson('/simulator/alipay/pay', { qr_code: created.qrCodeUrl, outcome: 'SUCCESS' })).toMatchObject({
      status: 409,
      body: { code: 'ACQ.TRADE_HAS_SUCCESS' },
    });
  });

  it('the same precreate again answers the same QR; different content under the same number is refused', async () => {
    const req = input();
    const first = await adapter.createPayment(req);
    expect((await adapter.createPayment(req)).qrCodeUrl).toBe(first.qrCodeUrl);
    const err = await rejection(adapter.createPayment({ ...req, amount: 100 }));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: 'ACQ.CONTEXT_INCONSISTENT', provider: 'alipay' });
  });

  it('truncates the subject to 256 characters; refuses another currency before calling Alipay', async () => {
    const req = input({ description: '茶'.repeat(300) });
    await adapter.createPayment(req);
    expect(sim.store.trade(creds.appId, req.paymentNo)!.subject).toBe('茶'.repeat(256));
    const usd = input({ currency: 'USD' });
    expect(await rejection(adapter.createPayment(usd))).toMatchObject({ providerCode: 'UNSUPPORTED_CURRENCY' });
    expect(sim.store.trade(creds.appId, usd.paymentNo)).toBeUndefined();
  });

  it('FAIL leaves the trade waiting (no notification); notify:false pays silently for the query fallback', async () => {
    const req = input({ notifyUrl: notifyUrl('fail-then-pay') });
    await adapter.createPayment(req);
    expect(await postJson('/simulator/alipay/pay', { out_trade_no: req.paymentNo, outcome: 'FAIL' })).toMatchObject({
      status: 200,
      body: { trade_status: 'WAIT_BUYER_PAY' },
    });
    expect((await adapter.queryPayment(req)).state).toBe('PENDING');
    expect(await postJson('/simulator/alipay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS', notify: false })).toMatchObject({ status: 200 });
    expect((await adapter.queryPayment(req)).state).toBe('SUCCEEDED');
    await new Promise((r) => setTimeout(r, 100));
    expect(inbox.get('fail-then-pay')).toBeUndefined();
    expect((await postJson('/simulator/alipay/pay', { qr_code: 'https://qr.alipay.com/nope', outcome: 'SUCCESS' })).status).toBe(404);
  });

  it('works with a PKCS#1 application key too', async () => {
    const pkcs1 = generateAlipayAppCredentials({ keyType: 'PKCS1' });
    expect(pkcs1.appPrivateKey).toContain('BEGIN RSA PRIVATE KEY');
    const p = new AlipayProvider(sim.adapterConfig(pkcs1));
    expect((await p.createPayment(input())).qrCodeUrl).toMatch(/^https:\/\/qr\.alipay\.com\//);
  });
});

describe('PAGE and WAP (signed browser URLs)', () => {
  it('PAGE: the URL is signed, opens the cashier (which checks the signature), and Pay returns to return_url signed', async () => {
    const req = input({ channel: PaymentChannel.ALIPAY_PAGE, amount: 1999, returnUrl: `${origin}/shop/return?order=O-1`, notifyUrl: notifyUrl('page') });
    const created = await adapter.createPayment(req);
    const url = new URL(created.redirectUrl!);
    expect(`${url.origin}${url.pathname}`).toBe(sim.gatewayUrl);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      app_id: creds.appId,
      method: 'alipay.trade.page.pay',
      sign_type: 'RSA2',
      charset: 'utf-8',
      version: '1.0',
      notify_url: req.notifyUrl,
      return_url: req.returnUrl,
    });
    expect(JSON.parse(url.searchParams.get('biz_content')!)).toMatchObject({
      out_trade_no: req.paymentNo,
      total_amount: '19.99',
      product_code: 'FAST_INSTANT_TRADE_PAY',
      subject: req.description,
    });
    expect(await adapter.queryPayment(req)).toMatchObject({ state: 'NOT_FOUND' });

    // The cashier refuses a tampered URL: the signature is checked there.
    const tampered = new URL(url);
    tampered.searchParams.set('biz_content', url.searchParams.get('biz_content')!.replace('19.99', '0.01'));
    const refused = await fetch(tampered);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('data-testid="error-code">isv.invalid-signature<');
    expect(await adapter.queryPayment(req)).toMatchObject({ state: 'NOT_FOUND' });

    const cashier = await fetch(created.redirectUrl!);
    expect(cashier.status).toBe(200);
    const html = await cashier.text();
    expect(html).toContain('¥19.99');
    expect(html).toContain('<form method="post" action="cashier"');
    expect(html).not.toMatch(/<(link|script)[^>]+(src|href)=/);
    expect(await adapter.queryPayment(req)).toMatchObject({ state: 'PENDING', raw: { trade_status: 'WAIT_BUYER_PAY' } });

    const paid = await fetch(`${sim.baseUrl}/cashier`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ app_id: creds.appId, out_trade_no: req.paymentNo, outcome: 'SUCCESS' }),
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    const back = new URL(paid.headers.get('location')!);
    expect(`${back.origin}${back.pathname}`).toBe(`${origin}/shop/return`);
    expect(back.searchParams.get('order')).toBe('O-1');
    expect(Object.fromEntries(back.searchParams)).toMatchObject({ method: 'alipay.trade.page.pay.return', out_trade_no: req.paymentNo, total_amount: '19.99', seller_id: creds.sellerId });
    // Alipay signs only what it appended: the merchant's own query parameters are not part of the signature.
    expect(adapter.verifyReturn(back.searchParams)).toEqual({ ok: false, reason: 'invalid signature' });
    back.searchParams.delete('order');
    expect(adapter.verifyReturn(back.searchParams)).toMatchObject({ ok: true, paymentNo: req.paymentNo, amount: 1999 });
    back.searchParams.set('total_amount', '0.01');
    expect(adapter.verifyReturn(back.searchParams)).toEqual({ ok: false, reason: 'invalid signature' });

    const [n] = await waitFor(() => inbox.get('page'));
    expect(parsedOk(await adapter.parseNotification(n)).event).toMatchObject({ type: 'payment', status: 'SUCCEEDED', paymentNo: req.paymentNo, amount: 1999 });
    expect(await adapter.queryPayment(req)).toMatchObject({ state: 'SUCCEEDED', amount: 1999 });
  });

  it('WAP: QUICK_WAP_WAY with quit_url; the cashier takes the SDK POST form too (biz_content in the body)', async () => {
    const req = input({ channel: PaymentChannel.ALIPAY_WAP, amount: 500, returnUrl: `${origin}/shop/return` });
    const created = await adapter.createPayment(req);
    const url = new URL(created.redirectUrl!);
    expect(url.searchParams.get('method')).toBe('alipay.trade.wap.pay');
    expect(JSON.parse(url.searchParams.get('biz_content')!)).toMatchObject({ product_code: 'QUICK_WAP_WAY', quit_url: req.returnUrl, total_amount: '5.00' });

    const body = new URLSearchParams({ biz_content: url.searchParams.get('biz_content')! });
    url.searchParams.delete('biz_content');
    const cashier = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect(cashier.status).toBe(200);
    expect(await cashier.text()).toContain('Alipay WAP cashier (simulator)');

    const failed = await fetch(`${sim.baseUrl}/cashier`, {
      method: 'POST',
      body: new URLSearchParams({ app_id: creds.appId, out_trade_no: req.paymentNo, outcome: 'FAIL' }),
      redirect: 'manual',
    });
    expect(failed.status).toBe(200);
    expect(await failed.text()).toContain('Payment failed');
    expect((await adapter.queryPayment(req)).state).toBe('PENDING');
  });
});

describe('close', () => {
  it('an unscanned QR: close resolves (ACQ.TRADE_NOT_EXIST) but the QR stays payable until time_expire', async () => {
    const req = input({ notifyUrl: notifyUrl('late') });
    await adapter.createPayment(req);
    await adapter.closePayment(req);
    expect((await adapter.queryPayment(req)).state).toBe('NOT_FOUND');
    // The pitfall: a success after a local close is possible, so the service must refund it.
    expect((await postJson('/simulator/alipay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS' })).status).toBe(200);
    expect(parsedOk(await adapter.parseNotification((await waitFor(() => inbox.get('late')))[0])).event).toMatchObject({ type: 'payment', status: 'SUCCEEDED' });
  });

  it('past time_expire a QR cannot be paid, and a scanned trade reads CLOSED', async () => {
    const expired = input({ expiresAt: new Date(Date.now() - 1000) });
    const created = await adapter.createPayment(expired);
    expect(await postJson('/simulator/alipay/pay', { out_trade_no: expired.paymentNo, outcome: 'SUCCESS' })).toMatchObject({
      status: 409,
      body: { code: 'ACQ.TRADE_HAS_CLOSE' },
    });
    expect(await (await fetch(sim.scanUrl(created.qrCodeUrl!))).text()).toContain('closed');

    const soon = input({ expiresAt: new Date(Math.floor(Date.now() / 1000) * 1000 + 2000) });
    const qr = (await adapter.createPayment(soon)).qrCodeUrl!;
    await fetch(sim.scanUrl(qr));
    expect((await adapter.queryPayment(soon)).state).toBe('PENDING');
    await new Promise((r) => setTimeout(r, soon.expiresAt.getTime() - Date.now() + 50));
    expect((await adapter.queryPayment(soon)).state).toBe('CLOSED');
    expect((await postJson('/simulator/alipay/pay', { qr_code: qr, outcome: 'SUCCESS' })).status).toBe(409);
    await adapter.closePayment(soon); // ACQ.TRADE_STATUS_ERROR on a closed trade resolves
  });

  it('a scanned QR closes: TRADE_CLOSED is notified as the payment CLOSED; closing again resolves; it cannot be paid', async () => {
    const req = input({ notifyUrl: notifyUrl('closed') });
    const created = await adapter.createPayment(req);
    await fetch(sim.scanUrl(created.qrCodeUrl!));
    await adapter.closePayment(req);
    expect((await adapter.queryPayment(req)).state).toBe('CLOSED');
    const [n] = await waitFor(() => inbox.get('closed'));
    expect(params(n).trade_status).toBe('TRADE_CLOSED');
    expect(parsedOk(await adapter.parseNotification(n)).event).toMatchObject({ type: 'payment', status: 'CLOSED', paymentNo: req.paymentNo, amount: 8800 });
    await adapter.closePayment(req);
    expect((await postJson('/simulator/alipay/pay', { qr_code: created.qrCodeUrl, outcome: 'SUCCESS' })).status).toBe(409);
  });

  it('a paid trade cannot be closed: ProviderRejectedError ACQ.TRADE_STATUS_ERROR', async () => {
    const req = input();
    await adapter.createPayment(req);
    await postJson('/simulator/alipay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS', notify: false });
    const err = await rejection(adapter.closePayment(req));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: 'ACQ.TRADE_STATUS_ERROR', provider: 'alipay' });
  });
});

describe('refunds', () => {
  async function paidPayment(tag: string, total = 10_000) {
    const req = input({ amount: total, notifyUrl: notifyUrl(tag) });
    await adapter.createPayment(req);
    await postJson('/simulator/alipay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS', notify: false });
    return req;
  }
  const refundInput = (paymentNo: string, refundNo: string, amount: number): RefundInput => ({
    channel: PaymentChannel.ALIPAY_QR,
    paymentNo,
    refundNo,
    amount,
    totalAmount: 10_000,
    currency: 'CNY',
    reason: 'customer asked',
    notifyUrl: notifyUrl('unused'),
  });

  it('partial then full: both notified as refund events (never payments); the same out_request_no twice refunds once', async () => {
    const req = await paidPayment('refunds');
    const r1 = `R1${req.paymentNo}`;
    expect(await adapter.refund(refundInput(req.paymentNo, r1, 3000))).toMatchObject({
      state: 'SUCCEEDED',
      raw: { fund_change: 'Y', refund_fee: '30.00', send_back_fee: '30.00' },
    });
    // A retry with the same number: Alipay answers fund_change N; the adapter asks the refund query.
    expect(await adapter.refund(refundInput(req.paymentNo, r1, 3000))).toMatchObject({
      state: 'SUCCEEDED',
      raw: { refund_status: 'REFUND_SUCCESS', refund_amount: '30.00', out_request_no: r1 },
    });
    const trade = sim.store.trade(creds.appId, req.paymentNo)!;
    expect(sim.store.refundsOf(trade)).toHaveLength(1);
    expect(sim.store.refunded(trade)).toBe(3000);
    expect(await adapter.queryRefund({ channel: PaymentChannel.ALIPAY_QR, paymentNo: req.paymentNo, refundNo: r1 })).toMatchObject({ state: 'SUCCEEDED' });

    const [partial] = await waitFor(() => inbox.get('refunds'));
    expect(params(partial)).toMatchObject({ trade_status: 'TRADE_SUCCESS', refund_fee: '30.00', out_biz_no: r1, total_amount: '100.00' });
    expect(params(partial).gmt_refund).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
    expect(parsedOk(await adapter.parseNotification(partial)).event).toEqual({ type: 'refund', status: 'SUCCEEDED', refundNo: r1, paymentNo: req.paymentNo });

    const r2 = `R2${req.paymentNo}`;
    expect(await adapter.refund(refundInput(req.paymentNo, r2, 7000))).toMatchObject({ state: 'SUCCEEDED', raw: { refund_fee: '100.00' } });
    const both = await waitFor(() => (inbox.get('refunds')?.length ?? 0) >= 2 && inbox.get('refunds'));
    expect(params(both[1])).toMatchObject({ trade_status: 'TRADE_CLOSED', refund_fee: '100.00', out_biz_no: r2 });
    expect(params(both[1]).gmt_close).toBeDefined();
    expect(parsedOk(await adapter.parseNotification(both[1])).event).toEqual({ type: 'refund', status: 'SUCCEEDED', refundNo: r2, paymentNo: req.paymentNo });
    // Refunded in full reads TRADE_CLOSED at Alipay, but it was paid.
    expect(await adapter.queryPayment(req)).toMatchObject({ state: 'SUCCEEDED', raw: { trade_status: 'TRADE_CLOSED' } });
    await new Promise((r) => setTimeout(r, 100));
    expect(inbox.get('refunds')).toHaveLength(2);
  });

  it('refuses more than what remains, a different amount under the same number, and an unpaid trade', async () => {
    const req = await paidPayment('refund-refusals');
    await adapter.refund(refundInput(req.paymentNo, `RA${req.paymentNo}`, 6000));
    expect(await rejection(adapter.refund(refundInput(req.paymentNo, `RB${req.paymentNo}`, 4001)))).toMatchObject({
      providerCode: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL',
    });
    expect(await rejection(adapter.refund(refundInput(req.paymentNo, `RA${req.paymentNo}`, 5000)))).toMatchObject({
      providerCode: 'ACQ.DISCORDANT_REPEAT_REQUEST',
    });
    // A refund Alipay never recorded is REFUND_NOT_FOUND: the caller sends it again with the same number.
    expect(await rejection(adapter.queryRefund({ channel: PaymentChannel.ALIPAY_QR, paymentNo: req.paymentNo, refundNo: `RB${req.paymentNo}` }))).toMatchObject({
      providerCode: 'REFUND_NOT_FOUND',
    });

    const unpaid = input();
    const qr = (await adapter.createPayment(unpaid)).qrCodeUrl!;
    expect(await rejection(adapter.refund(refundInput(unpaid.paymentNo, `RU${unpaid.paymentNo}`, 100)))).toMatchObject({ providerCode: 'ACQ.TRADE_NOT_EXIST' });
    await fetch(sim.scanUrl(qr));
    expect(await rejection(adapter.refund(refundInput(unpaid.paymentNo, `RU${unpaid.paymentNo}`, 100)))).toMatchObject({ providerCode: 'ACQ.TRADE_STATUS_ERROR' });
  });
});

describe('notifications refused or flagged (signed by a real signer, then broken)', () => {
  const base = () => ({
    app_id: creds.appId,
    auth_app_id: creds.appId,
    seller_id: creds.sellerId,
    trade_no: '2026112622001400000000000001',
    out_trade_no: 'P-REJECT-1',
    total_amount: '1.00',
    trade_status: 'TRADE_SUCCESS',
    gmt_payment: '2026-11-26 19:30:00',
  });
  const parse = (rawBody: string) => adapter.parseNotification({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, rawBody: Buffer.from(rawBody) });

  it('accepts the genuine one', async () => {
    const n = sim.buildNotification({ params: base() });
    expect(await parse(n.rawBody)).toMatchObject({ ok: true, notificationId: n.notifyId, event: { type: 'payment', amount: 100, paidAt: new Date('2026-11-26T11:30:00Z') } });
  });

  it('refuses a forged signature, a tampered amount and a missing sign', async () => {
    const forged = impostor.buildNotification({ params: base() });
    expect(await parse(forged.rawBody)).toEqual({ ok: false, reason: 'invalid signature' });
    const genuine = sim.buildNotification({ params: base() });
    expect(genuine.rawBody).toContain('total_amount=1.00');
    expect(await parse(genuine.rawBody.replace('total_amount=1.00', 'total_amount=100.00'))).toEqual({ ok: false, reason: 'invalid signature' });
    expect(await parse(genuine.rawBody.replace(/&?sign=[^&]*/, ''))).toEqual({ ok: false, reason: 'missing sign' });
    const refusal = adapter.notificationReply(false);
    expect(refusal.body).not.toBe('success');
  });

  it('flags a wrong app_id or seller_id through mismatch', async () => {
    const otherApp = parsedOk(await parse(sim.buildNotification({ params: { ...base(), app_id: '2021000000000000' } }).rawBody));
    expect(otherApp.mismatch).toMatch(/app_id 2021000000000000/);
    const otherSeller = parsedOk(await parse(sim.buildNotification({ params: { ...base(), seller_id: '2088000000000000' } }).rawBody));
    expect(otherSeller.mismatch).toMatch(/seller_id 2088000000000000/);
  });

  it('reads a GBK notification', async () => {
    const n = sim.buildNotification({ params: { ...base(), subject: '绿茶' }, charset: 'GBK' });
    expect(n.rawBody).toContain('charset=GBK');
    expect(parsedOk(await parse(n.rawBody)).payload).toMatchObject({ subject: '绿茶' });
  });
});

describe('delivery', () => {
  it("retries on Alipay's schedule until the body is exactly `success`: fail, fail, success → 3 deliveries", async () => {
    scripted.set('retry', ['fail', 'success\n']);
    const req = input({ notifyUrl: notifyUrl('retry') });
    await adapter.createPayment(req);
    await postJson('/simulator/alipay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS' });

    const got = await waitFor(() => (inbox.get('retry')?.length ?? 0) >= 3 && inbox.get('retry'));
    await new Promise((r) => setTimeout(r, 200)); // a fourth would have come 60 ms after the third at ×10000
    expect(inbox.get('retry')).toHaveLength(3);
    const ids = got.map((n) => params(n).notify_id);
    expect(new Set(ids).size).toBe(1);
    for (const n of got) expect((await adapter.parseNotification(n)).ok).toBe(true);
    expect(sim.notifications.filter((a) => a.notificationId === ids[0]).map((a) => [a.attempt, a.status, a.acknowledged])).toEqual([
      [1, 200, false],
      [2, 200, false],
      [3, 200, true],
    ]);
  });

  it('redeliver sends the same notify_id again, freshly signed', async () => {
    const req = input({ notifyUrl: notifyUrl('redeliver') });
    await adapter.createPayment(req);
    await postJson('/simulator/alipay/pay', { out_trade_no: req.paymentNo, outcome: 'SUCCESS' });
    const [first] = await waitFor(() => inbox.get('redeliver'));
    const id = params(first).notify_id;
    expect(sim.redeliver(id)).toBe(true);
    const both = await waitFor(() => (inbox.get('redeliver')?.length ?? 0) >= 2 && inbox.get('redeliver'));
    expect(await adapter.parseNotification(both[1])).toMatchObject({ ok: true, notificationId: id });
    expect(sim.redeliver('nope')).toBe(false);
  });

  it('close() cancels pending retries', async () => {
    local = createAlipaySimulator({ publicBaseUrl: origin, mountPath: '/local/alipay', timeScale: 1000 });
    const localAdapter = new AlipayProvider(local.adapterConfig(creds));
    scripted.set('closing', ['fail', 'fail', 'fail']);
    const req = input({ notifyUrl: notifyUrl('closing') });
    await localAdapter.createPayment(req);
    expect(local.pay({ out_trade_no: req.paymentNo, outcome: 'SUCCESS' })).toMatchObject({ ok: true });
    await waitFor(() => local.notifications.length === 1);
    local.close();
    await new Promise((r) => setTimeout(r, 400)); // the first retry was due 240 ms later
    expect(local.notifications).toHaveLength(1);
    expect(inbox.get('closing')).toHaveLength(1);
  });
});

describe('transport and authentication failures', () => {
  const at = (path: string, over: Partial<AlipayConfig> = {}) => new AlipayProvider({ ...config, gateway: `${origin}${path}/gateway.do`, ...over });

  it('an answer signed by a key the adapter does not trust → ProviderSignatureError', async () => {
    const err = await rejection(at('/impostor/alipay').createPayment(input()));
    expect(err).toBeInstanceOf(ProviderSignatureError);
    // Refusals are verified too: an impostor's TRADE_NOT_EXIST cannot make a close look done.
    expect(await rejection(at('/impostor/alipay').closePayment(input()))).toBeInstanceOf(ProviderSignatureError);
  });

  it('unsigned answers, success or refusal → ProviderSignatureError', async () => {
    expect(await rejection(at('/unsigned').createPayment(input()))).toBeInstanceOf(ProviderSignatureError);
    expect(await rejection(at('/unsigned-4xx').closePayment(input()))).toBeInstanceOf(ProviderSignatureError);
  });

  it('5xx and refused connections → ProviderNetworkError', async () => {
    expect(await rejection(at('/broken').queryPayment(input()))).toBeInstanceOf(ProviderNetworkError);
    const port = await closedPort();
    const err = await rejection(new AlipayProvider({ ...config, gateway: `http://127.0.0.1:${port}/gateway.do` }).queryPayment(input()));
    expect(err).toBeInstanceOf(ProviderNetworkError);
  });

  it('a gateway that hangs → ProviderNetworkError within timeoutMs', async () => {
    const started = Date.now();
    const err = await rejection(at('/hang', { timeoutMs: 300 }).queryPayment(input()));
    expect(err).toBeInstanceOf(ProviderNetworkError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('the simulator refuses a wrong app key or an unknown app id (signed refusals → ProviderRejectedError)', async () => {
    const wrongKey = new AlipayProvider({ ...config, privateKey: generateAlipayAppCredentials().appPrivateKey });
    expect(await rejection(wrongKey.createPayment(input()))).toMatchObject({ providerCode: 'isv.invalid-signature' });
    const unknownApp = new AlipayProvider({ ...config, appId: '2021000000000009' });
    expect(await rejection(unknownApp.queryPayment(input()))).toMatchObject({ providerCode: 'isv.invalid-app-id' });
  });

  it("the simulator refuses the SDK's own host-local timestamp from a UTC host (8 hours off); the adapter is right", async () => {
    const tz = process.env.TZ;
    process.env.TZ = 'UTC';
    try {
      const raw = new AlipaySdk({ appId: creds.appId, privateKey: creds.appPrivateKey, keyType: 'PKCS8', alipayPublicKey: sim.publicKeyPem, gateway: sim.gatewayUrl, camelcase: false });
      const res = await raw.exec('alipay.trade.query', { bizContent: { out_trade_no: 'P-TZ' } }, { validateSign: true });
      expect(res).toMatchObject({ code: '40002', sub_code: 'isv.invalid-timestamp' });
      expect((await adapter.queryPayment(input())).state).toBe('NOT_FOUND');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });
});

describe('simulator housekeeping', () => {
  it('credentials and keys look like Alipay ones', () => {
    expect(creds.appId).toMatch(/^2021\d{12}$/);
    expect(creds.sellerId).toMatch(/^2088\d{12}$/);
    expect(creds.appPrivateKey).toContain('BEGIN PRIVATE KEY');
    expect(sim.publicKeyPem).toContain('BEGIN PUBLIC KEY');
    expect(config).toMatchObject({ appId: creds.appId, sellerId: creds.sellerId, gateway: `${origin}/simulator/alipay/gateway.do`, alipayPublicKey: sim.publicKeyPem });
  });

  it('unknown methods answer a signed error_response', async () => {
    const res = await fetch(`${sim.gatewayUrl}?method=alipay.trade.nope`);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ error_response: { code: '40002', sub_code: 'isv.invalid-method' } });
    expect(JSON.parse(text).sign).toBeDefined();
  });
});
