import { generateKeyPairSync } from 'node:crypto';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentChannel } from '../../src/payments/channels';
import { ProviderNetworkError, ProviderRejectedError, ProviderSignatureError } from '../../src/payments/providers/errors';
import type { CreatePaymentInput, ParsedNotification, RawNotification } from '../../src/payments/providers/provider';
import { UnionPayProvider, type UnionPayConfig } from '../../src/payments/providers/unionpay';
import { formatAcpResponse, parseAcpResponse, signFields, toPrivateKey } from '../../src/payments/providers/unionpay/crypto';
import {
  consumeResultFields,
  createUnionPaySimulator,
  generateUnionPayMerchantCredentials,
  issueCertificate,
  UNIONPAY_RETRY_SCHEDULE_MS,
  type UnionPayMerchantCredentials,
  type UnionPaySimulator,
} from '../../src/simulators/unionpay';
import { closedPort, rejection, SimulatorHarness, waitFor } from '../helpers/simulator-harness';

const harness = new SimulatorHarness();
const { app, postJson } = harness;
let origin: string;
let sim: UnionPaySimulator;
/** A simulator with its own, unrelated certificate chain. */
let stranger: UnionPaySimulator;
/** Signs with a certificate from sim's own middle CA whose CN does not name UnionPay. */
let wrongCn: UnionPaySimulator;
let local: UnionPaySimulator;
let creds: UnionPayMerchantCredentials;
let config: UnionPayConfig;
let adapter: UnionPayProvider;

/** Notifications received per tag (`/notify/unionpay/:tag`), and statuses to answer before the default 200. */
const { inbox, scripted } = harness.notifyReceiver<number>('/notify/unionpay', (res, status) => {
  res.status(status ?? 200).send('ok');
});

let seq = 0;
const paymentNo = (prefix = 'P') => `${prefix}${Date.now()}${String(++seq).padStart(4, '0')}`;
const notifyUrl = (tag: string) => `${origin}/notify/unionpay/${tag}`;

function input(over: Partial<CreatePaymentInput> = {}): CreatePaymentInput {
  return {
    channel: PaymentChannel.UNIONPAY_QR,
    paymentNo: paymentNo(),
    amount: 8800,
    currency: 'CNY',
    description: 'Order O-1: 2 × green tea',
    expiresAt: new Date(Date.now() + 15 * 60_000),
    notifyUrl: notifyUrl('default'),
    ...over,
  };
}

async function postForm(url: string, fields: Record<string, string>) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, html: await res.text() };
}

const unescapeHtml = (s: string) => s.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));

/** The first form of a page: its action and hidden fields, as a browser would submit them. */
function formOf(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form[^>]*\saction="([^"]*)"/.exec(html)?.[1];
  if (action === undefined) throw new Error(`no form in: ${html.slice(0, 300)}`);
  const fields = Object.fromEntries(
    [...html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)].map((m) => [unescapeHtml(m[1]), unescapeHtml(m[2])]),
  );
  return { action: unescapeHtml(action), fields };
}

const asNotification = (fields: Record<string, string>): RawNotification => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  rawBody: Buffer.from(new URLSearchParams(fields).toString()),
});

beforeAll(async () => {
  harness.mount('/simulator/unionpay', () => sim?.router);
  harness.mount('/stranger/unionpay', () => stranger?.router);
  harness.mount('/wrongcn/unionpay', () => wrongCn?.router);
  harness.mount('/local/unionpay', () => local?.router);
  // This service's page behind a gateway redirectUrl.
  app.get('/pay/unionpay/front', (req, res) => {
    const page = adapter.frontFormPage(new URL(req.originalUrl, origin).search);
    res.status(page.status).set(page.headers).type(page.contentType).send(page.body);
  });
  app.post('/return/:tag', (_req, res) => {
    res.type('html').send('<p>back at the shop</p>');
  });
  // Misbehaving "UnionPay" gateways.
  app.post('/tamper/gateway/api/:op', express.raw({ type: '*/*' }), async (req, res) => {
    const upstream = await fetch(`${sim.gatewayUrl}${String(req.params.op)}`, {
      method: 'POST',
      headers: { 'content-type': String(req.headers['content-type']) },
      body: (req.body as Buffer).toString('utf8'),
    });
    const fields = parseAcpResponse(await upstream.text());
    if (fields.qrCode) fields.qrCode = 'https://qr.95516.com/00010000/62forged';
    if (fields.origRespCode) fields.origRespCode = '00';
    res.type('text/plain').send(formatAcpResponse(fields));
  });
  app.post('/unsigned/gateway/api/:op', (_req, res) => {
    res.type('text/plain').send('version=5.1.0&signMethod=01&respCode=00&respMsg=ok&qrCode=https://qr.95516.com/00010000/62forged');
  });
  app.post('/broken/gateway/api/:op', (_req, res) => {
    res.status(502).send('bad gateway');
  });
  app.use('/hang', () => {
    /* never answers */
  });

  origin = await harness.listen();

  sim = createUnionPaySimulator({ publicBaseUrl: origin, timeScale: 1000 });
  stranger = createUnionPaySimulator({ publicBaseUrl: origin, mountPath: '/stranger/unionpay' });
  const notUnionPay = issueCertificate({
    subject: [
      { shortName: 'C', value: 'CN' },
      { shortName: 'OU', value: 'Merchants' },
      { shortName: 'CN', value: '041@Z20260101@某某网络科技有限公司@00000001' },
    ],
    issuer: sim.pki.middle,
  });
  wrongCn = createUnionPaySimulator({ publicBaseUrl: origin, mountPath: '/wrongcn/unionpay', pki: { ...sim.pki, signer: notUnionPay } });

  creds = sim.issueMerchantCredentials();
  config = sim.adapterConfig(creds, { timeoutMs: 3000 });
  adapter = new UnionPayProvider(config);
  stranger.registerMerchant({ merId: creds.merId, signCertPem: creds.signCert });
  wrongCn.registerMerchant({ merId: creds.merId, signCertPem: creds.signCert });
}, 60_000);

afterAll(async () => {
  sim?.close();
  stranger?.close();
  wrongCn?.close();
  local?.close();
  await harness.close();
});

describe('gateway (front consume through the browser)', () => {
  /** What a browser does with a redirectUrl: load our page, submit its form to frontTransReq.do. */
  async function openCashier(redirectUrl: string) {
    const page = await fetch(redirectUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const front = formOf(await page.text());
    expect(front.action).toBe(`${sim.gatewayUrl}frontTransReq.do`);
    const cashier = await postForm(front.action, front.fields);
    return { front, cashier };
  }

  it('redirectUrl → form → cashier; Pay notifies backUrl with SUCCEEDED and returns the browser to frontUrl', async () => {
    const req = input({ channel: PaymentChannel.UNIONPAY_GATEWAY, notifyUrl: notifyUrl('gw-paid'), returnUrl: `${origin}/return/gw-paid` });
    const created = await adapter.createPayment(req);
    expect(created.redirectUrl).toMatch(new RegExp(`^${origin}/pay/unionpay/front\\?`));
    const ref = { channel: req.channel, paymentNo: req.paymentNo, providerReference: created.providerReference };
    // UnionPay knows a front order only once the browser has POSTed it.
    expect((await adapter.queryPayment(ref)).state).toBe('NOT_FOUND');

    const { front, cashier } = await openCashier(created.redirectUrl!);
    expect(front.fields).toMatchObject({ merId: creds.merId, orderId: req.paymentNo, txnAmt: '8800', bizType: '000201', txnSubType: '01' });
    expect(cashier.status).toBe(200);
    expect(cashier.html).toContain('¥88.00');
    expect(cashier.html).toContain(req.paymentNo);
    expect(cashier.html).not.toMatch(/<(link|script)[^>]+(src|href)=/);
    expect(await adapter.queryPayment(ref)).toMatchObject({ state: 'PENDING', raw: { respCode: '00', origRespCode: '05' } });

    const buttons = formOf(cashier.html);
    const back = await postForm(buttons.action, { ...buttons.fields, outcome: 'SUCCESS' });
    expect(back.status).toBe(200);
    const frontReturn = formOf(back.html);
    expect(frontReturn.action).toBe(req.returnUrl);
    const returned = await adapter.parseNotification(asNotification(frontReturn.fields));
    expect(returned).toMatchObject({ ok: true, event: { type: 'payment', status: 'SUCCEEDED', paymentNo: req.paymentNo, amount: 8800 } });

    const [n] = await waitFor(() => inbox.get('gw-paid'));
    expect(n.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    const parsed = await adapter.parseNotification(n);
    expect(parsed).toMatchObject({
      ok: true,
      event: { type: 'payment', status: 'SUCCEEDED', paymentNo: req.paymentNo, amount: 8800, currency: 'CNY' },
      payload: { merId: creds.merId, txnType: '01', respCode: '00' },
    });
    const ok = parsed as Extract<ParsedNotification, { ok: true }>;
    expect(ok.mismatch).toBeUndefined();
    const queryId = (ok.payload as Record<string, string>).queryId;
    expect(queryId).toMatch(/^\d{21}$/);
    expect(ok.notificationId).toBe(`${queryId}:01`);

    const q = await adapter.queryPayment(ref);
    expect(q).toMatchObject({ state: 'SUCCEEDED', providerTransactionId: queryId, amount: 8800 });
    expect(Math.abs(q.paidAt!.getTime() - Date.now())).toBeLessThan(5000);
    const attempts = await waitFor(() => {
      const a = sim.notifications.filter((x) => x.notificationId === ok.notificationId);
      return a.length > 0 && a;
    });
    expect(attempts).toMatchObject([{ attempt: 1, status: 200, acknowledged: true, url: req.notifyUrl }]);

    // The same form again shows the order as paid; paying twice is refused.
    const again = await postForm(front.action, front.fields);
    expect(again.html).toContain('has been paid');
    expect((await postJson('/simulator/unionpay/pay', { orderId: req.paymentNo, outcome: 'SUCCESS' })).status).toBe(409);
  });

  it('the simulator verifies the front request: a tampered amount, another merchant key or an unknown merchant is refused (11)', async () => {
    const req = input({ channel: PaymentChannel.UNIONPAY_GATEWAY, returnUrl: `${origin}/return/x` });
    const created = await adapter.createPayment(req);
    const fields = Object.fromEntries(new URL(created.redirectUrl!).searchParams);

    const tampered = await postForm(`${sim.gatewayUrl}frontTransReq.do`, { ...fields, txnAmt: '1' });
    expect(tampered.status).toBe(400);
    expect(tampered.html).toContain('data-testid="resp-code">11<');
    expect(tampered.html).toContain('验证签名失败');

    // Signed with another certificate of the same CA: its certId is not the registered one…
    const other = sim.issueMerchantCredentials(creds.merId);
    const impostor = new UnionPayProvider({ ...config, signPrivateKey: other.signPrivateKey, signCert: other.signCert });
    const forged = Object.fromEntries(new URL((await impostor.createPayment(input({ channel: req.channel, returnUrl: req.returnUrl }))).redirectUrl!).searchParams);
    expect((await postForm(`${sim.gatewayUrl}frontTransReq.do`, forged)).html).toContain('certId 与商户签名证书不符');
    // …and a signature by another key under the registered certId does not verify.
    const { signature: _s, certId: _c, ...unsigned } = fields;
    const wrongKeyPage = await postForm(`${sim.gatewayUrl}frontTransReq.do`, signFields(unsigned, toPrivateKey(other.signPrivateKey), creds.certId));
    expect(wrongKeyPage.status).toBe(400);
    expect(wrongKeyPage.html).toMatch(/>验证签名失败</);

    const unknown = await postForm(`${sim.gatewayUrl}frontTransReq.do`, { ...fields, merId: '777290058000000' });
    expect(unknown.html).toContain('未在模拟器注册');
    // Our own page refuses a link whose fields were changed.
    const url = new URL(created.redirectUrl!);
    url.searchParams.set('txnAmt', '1');
    expect((await fetch(url)).status).toBe(400);
  });

  it('Fail on the cashier: a result page, the query reads FAILED, nothing is notified', async () => {
    const req = input({ channel: PaymentChannel.UNIONPAY_GATEWAY, notifyUrl: notifyUrl('gw-fail'), returnUrl: `${origin}/return/gw-fail` });
    const created = await adapter.createPayment(req);
    const { cashier } = await openCashier(created.redirectUrl!);
    const buttons = formOf(cashier.html);
    const failed = await postForm(buttons.action, { ...buttons.fields, outcome: 'FAIL' });
    expect(failed.html).toContain('payment failed');
    expect(failed.html).toContain(`href="${req.returnUrl}"`);
    const q = await adapter.queryPayment({ channel: req.channel, paymentNo: req.paymentNo, providerReference: created.providerReference });
    expect(q).toMatchObject({ state: 'FAILED', raw: { origRespCode: '01' } });
    await new Promise((r) => setTimeout(r, 100));
    expect(inbox.get('gw-fail')).toBeUndefined();
  });
});

describe('QR code', () => {
  it('create → PENDING → phone page → /pay → SUCCEEDED; the notification verifies and maps', async () => {
    const req = input({ notifyUrl: notifyUrl('qr-paid') });
    const created = await adapter.createPayment(req);
    expect(created.qrCodeUrl).toMatch(/^https:\/\/qr\.95516\.com\/00010000\/62\d{18}$/);
    expect(created.providerReference).toMatch(/^\d{14}$/);
    expect(created.raw).toMatchObject({ respCode: '00', qrCode: created.qrCodeUrl, orderId: req.paymentNo });
    expect(JSON.stringify(created.raw)).not.toContain('CERTIFICATE');
    const ref = { channel: req.channel, paymentNo: req.paymentNo, providerReference: created.providerReference };
    expect(await adapter.queryPayment(ref)).toMatchObject({ state: 'PENDING', amount: 8800 });

    const scan = await fetch(sim.scanUrl(created.qrCodeUrl!));
    expect(scan.status).toBe(200);
    expect(await scan.text()).toContain('¥88.00');

    const paid = await postJson('/simulator/unionpay/pay', { orderId: req.paymentNo, outcome: 'SUCCESS' });
    expect(paid).toMatchObject({ status: 200, body: { orderId: req.paymentNo, status: 'SUCCESS' } });
    const queryId = paid.body.queryId as string;

    expect(await adapter.queryPayment(ref)).toMatchObject({ state: 'SUCCEEDED', providerTransactionId: queryId, amount: 8800, raw: { origRespCode: '00' } });
    const [n] = await waitFor(() => inbox.get('qr-paid'));
    expect(await adapter.parseNotification(n)).toMatchObject({
      ok: true,
      notificationId: `${queryId}:01`,
      event: { type: 'payment', status: 'SUCCEEDED', paymentNo: req.paymentNo, amount: 8800, providerTransactionId: queryId },
      payload: { txnSubType: '07', bizType: '000000' },
    });
  });

  it('the phone page can pay by qrCode; FAIL reads FAILED and is not notified; notify:false records silently', async () => {
    const failed = input({ notifyUrl: notifyUrl('qr-fail') });
    const c1 = await adapter.createPayment(failed);
    expect(await postJson('/simulator/unionpay/pay', { qrCode: c1.qrCodeUrl, outcome: 'FAIL' })).toMatchObject({ status: 200, body: { status: 'FAILED' } });
    expect((await adapter.queryPayment({ ...failed, providerReference: c1.providerReference })).state).toBe('FAILED');

    const silent = input({ notifyUrl: notifyUrl('qr-silent') });
    const c2 = await adapter.createPayment(silent);
    expect((await postJson('/simulator/unionpay/pay', { orderId: silent.paymentNo, outcome: 'SUCCESS', notify: false })).status).toBe(200);
    expect((await adapter.queryPayment({ ...silent, providerReference: c2.providerReference })).state).toBe('SUCCEEDED');
    await new Promise((r) => setTimeout(r, 100));
    expect(inbox.get('qr-fail')).toBeUndefined();
    expect(inbox.get('qr-silent')).toBeUndefined();
  });

  it('an unknown order (or the wrong txnTime) is NOT_FOUND; /pay of an unknown order is 404', async () => {
    expect((await adapter.queryPayment({ channel: PaymentChannel.UNIONPAY_QR, paymentNo: 'NOPE00000001', providerReference: '20260101080000' })).state).toBe('NOT_FOUND');
    const req = input();
    await adapter.createPayment(req);
    expect((await adapter.queryPayment({ ...req, providerReference: '20200101080000' })).state).toBe('NOT_FOUND');
    expect((await postJson('/simulator/unionpay/pay', { orderId: 'NOPE00000001', outcome: 'SUCCESS' })).status).toBe(404);
  });

  it('past payTimeout an unpaid order reads FAILED and cannot be paid', async () => {
    const req = input({ expiresAt: new Date(Date.now() - 1000) });
    const created = await adapter.createPayment(req);
    expect((await adapter.queryPayment({ ...req, providerReference: created.providerReference })).state).toBe('FAILED');
    expect((await postJson('/simulator/unionpay/pay', { orderId: req.paymentNo, outcome: 'SUCCESS' })).body.code).toBe('ORDER_EXPIRED');
  });

  it('a reused orderId with another txnTime is refused (12 重复交易)', async () => {
    const req = input();
    await adapter.createPayment(req);
    await new Promise((r) => setTimeout(r, 1100)); // a new second, so a new txnTime
    const err = await rejection(adapter.createPayment(req));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: '12', provider: 'unionpay' });
  });
});

describe('close', () => {
  it('an unpaid payment: resolves (payTimeout ends it at UnionPay); a paid one: ORDER_PAID', async () => {
    const unpaid = input();
    const c1 = await adapter.createPayment(unpaid);
    await expect(adapter.closePayment({ ...unpaid, providerReference: c1.providerReference })).resolves.toBeUndefined();

    const paid = input();
    const c2 = await adapter.createPayment(paid);
    await postJson('/simulator/unionpay/pay', { orderId: paid.paymentNo, outcome: 'SUCCESS', notify: false });
    const err = await rejection(adapter.closePayment({ ...paid, providerReference: c2.providerReference }));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: 'ORDER_PAID', provider: 'unionpay' });
  });
});

describe('refunds', () => {
  async function paidPayment(amount = 10_000) {
    const req = input({ amount });
    const created = await adapter.createPayment(req);
    const paid = await postJson('/simulator/unionpay/pay', { orderId: req.paymentNo, outcome: 'SUCCESS', notify: false });
    return { req, created, queryId: paid.body.queryId as string };
  }
  const refundInput = (queryId: string, refundNo: string, amount: number, tag = 'refund') => ({
    channel: PaymentChannel.UNIONPAY_QR,
    paymentNo: 'unused',
    refundNo,
    providerTransactionId: queryId,
    amount,
    totalAmount: 10_000,
    currency: 'CNY',
    reason: 'customer asked',
    notifyUrl: notifyUrl(tag),
  });

  it('accepted → PENDING; queried by txnTime or queryId → SUCCEEDED; notified; the same refundNo never refunds twice', async () => {
    sim.setRefundBehaviour('success');
    const { queryId } = await paidPayment();
    const refundNo = paymentNo('R');
    const r1 = await adapter.refund(refundInput(queryId, refundNo, 3000, 'refund-ok'));
    expect(r1).toMatchObject({ state: 'PENDING', raw: { respCode: '00', origQryId: queryId, txnAmt: '3000' } });
    expect(r1.providerRefundId).toMatch(/^\d{21}$/);
    expect(r1.providerReference).toMatch(/^\d{14}$/);

    const byTime = { channel: PaymentChannel.UNIONPAY_QR, paymentNo: 'unused', refundNo, providerReference: r1.providerReference };
    expect(await adapter.queryRefund(byTime)).toMatchObject({ state: 'SUCCEEDED', providerRefundId: r1.providerRefundId });
    expect(await adapter.queryRefund({ ...byTime, providerReference: r1.providerRefundId })).toMatchObject({ state: 'SUCCEEDED' });

    const [n] = await waitFor(() => inbox.get('refund-ok'));
    expect(await adapter.parseNotification(n)).toMatchObject({
      ok: true,
      notificationId: `${r1.providerRefundId}:04`,
      event: { type: 'refund', status: 'SUCCEEDED', refundNo, amount: 3000, providerRefundId: r1.providerRefundId },
    });

    // A retry with the same refundNo: UnionPay answers 12 (重复交易); it is the same refund, still one at UnionPay.
    expect(await adapter.refund(refundInput(queryId, refundNo, 3000))).toMatchObject({ state: 'PENDING', raw: { respCode: '12' } });
    const orig = sim.store.byQuery(queryId)!;
    expect(orig.type === 'consume' && sim.store.refundsOf(orig)).toHaveLength(1);
    expect(orig.type === 'consume' && sim.store.refundable(orig)).toBe(7000);
  });

  it('more than what remains (36), an unknown original (35) and an unpaid one are refused', async () => {
    const { queryId } = await paidPayment();
    await adapter.refund(refundInput(queryId, paymentNo('R'), 6000));
    expect(await rejection(adapter.refund(refundInput(queryId, paymentNo('R'), 4001)))).toMatchObject({ providerCode: '36' });
    expect(await rejection(adapter.refund(refundInput('209901010000000000000', paymentNo('R'), 1)))).toMatchObject({ providerCode: '35' });
    expect(await adapter.refund(refundInput(queryId, paymentNo('R'), 4000))).toMatchObject({ state: 'PENDING' });
    const err = await rejection(adapter.queryRefund({ channel: PaymentChannel.UNIONPAY_QR, paymentNo: 'x', refundNo: 'RNOPE0000001', providerReference: '20260101080000' }));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: '34' });
  });

  it('scripted: pending until settled; a failed refund reads FAILED and is notified as FAILED', async () => {
    const { queryId } = await paidPayment();
    const ctl = await postJson('/simulator/unionpay/control', { refundBehaviour: 'pending' });
    expect(ctl).toMatchObject({ status: 200, body: { refundBehaviour: 'pending' } });
    const refundNo = paymentNo('R');
    const r = await adapter.refund(refundInput(queryId, refundNo, 1000, 'refund-slow'));
    const ref = { channel: PaymentChannel.UNIONPAY_QR, paymentNo: 'x', refundNo, providerReference: r.providerReference };
    expect(await adapter.queryRefund(ref)).toMatchObject({ state: 'PENDING', raw: { origRespCode: '05' } });
    expect((await postJson('/simulator/unionpay/control', { settleRefund: { merId: creds.merId, orderId: refundNo, state: 'FAILED' } })).status).toBe(200);
    expect(await adapter.queryRefund(ref)).toMatchObject({ state: 'FAILED' });
    const [n] = await waitFor(() => inbox.get('refund-slow'));
    expect(await adapter.parseNotification(n)).toMatchObject({ ok: true, event: { type: 'refund', status: 'FAILED', refundNo } });
    sim.setRefundBehaviour('success');
  });
});

describe('notification rejection (signed as UnionPay, then broken)', () => {
  const result = (over: Record<string, string> = {}) => ({
    ...consumeResultFields({
      type: 'consume',
      kind: 'QR',
      merId: creds.merId,
      orderId: 'P2026112600099',
      txnTime: '20261126193000',
      txnSubType: '07',
      bizType: '000000',
      channelType: '08',
      txnAmt: 100,
      payTimeoutAt: Date.now() + 60_000,
      state: 'SUCCESS',
      createdAt: Date.now(),
      queryId: '202611261930009999999',
      traceNo: '123456',
      traceTime: '1126193001',
      settleDate: '1126',
    }),
    ...over,
  });
  const parse = (rawBody: string) => adapter.parseNotification({ headers: {}, rawBody: Buffer.from(rawBody) });

  it('accepts the genuine one', async () => {
    const n = sim.buildNotification(result());
    expect(await parse(n.rawBody)).toMatchObject({ ok: true, notificationId: '202611261930009999999:01', event: { type: 'payment', amount: 100 } });
  });

  it('refuses a tampered amount, a forged signature, a foreign chain and a non-UnionPay CN from the right chain', async () => {
    const n = sim.buildNotification(result());
    const forgedKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const forged = sim.buildNotification(result(), { key: forgedKey, certPem: sim.signerCertPem, certId: sim.pki.signer.certId });
    const cases: Array<[string, RegExp]> = [
      [n.rawBody.replace('txnAmt=100&', 'txnAmt=10000&'), /invalid signature/],
      [forged.rawBody, /invalid signature/],
      [stranger.buildNotification(result()).rawBody, /not issued by the configured UnionPay middle/],
      [wrongCn.buildNotification(result()).rawBody, /not owned by UnionPay/],
      [new URLSearchParams({ ...n.fields, signature: '' }).toString(), /unsigned/],
    ];
    for (const [raw, reason] of cases) {
      const r = await parse(raw);
      expect(r.ok, String(reason)).toBe(false);
      expect(!r.ok && r.reason).toMatch(reason);
    }
    expect(adapter.notificationReply(false)).toEqual({ status: 400, contentType: 'text/plain', body: 'fail' });
  });

  it('flags a notification for another merId via mismatch', async () => {
    const r = await parse(sim.buildNotification(result({ merId: '777290058999999' })).rawBody);
    expect(r.ok).toBe(true);
    expect(r.ok && r.mismatch).toMatch(/merId 777290058999999/);
  });

  it('retries on the UnionPay schedule until an HTTP 200: 500, 204, 200 → exactly 3 deliveries of the same message', async () => {
    expect(UNIONPAY_RETRY_SCHEDULE_MS).toEqual([0, 60_000, 120_000, 240_000]);
    scripted.set('retry', [500, 204]);
    const req = input({ notifyUrl: notifyUrl('retry') });
    await adapter.createPayment(req);
    await postJson('/simulator/unionpay/pay', { orderId: req.paymentNo, outcome: 'SUCCESS' });

    const got = await waitFor(() => (inbox.get('retry')?.length ?? 0) >= 3 && inbox.get('retry'));
    await new Promise((r) => setTimeout(r, 300)); // a fourth would have come 120 ms after the third at ×1000
    expect(inbox.get('retry')).toHaveLength(3);
    expect(new Set(got.map((n) => n.rawBody.toString())).size).toBe(1);
    for (const n of got) expect((await adapter.parseNotification(n)).ok).toBe(true);
    const id = ((await adapter.parseNotification(got[0])) as Extract<ParsedNotification, { ok: true }>).notificationId;
    expect(sim.notifications.filter((a) => a.notificationId === id).map((a) => [a.attempt, a.status, a.acknowledged])).toEqual([
      [1, 500, false],
      [2, 204, false],
      [3, 200, true],
    ]);
  });

  it('gives up after five deliveries', async () => {
    scripted.set('never', [500, 500, 500, 500, 500, 500]);
    const req = input({ notifyUrl: notifyUrl('never') });
    await adapter.createPayment(req);
    await postJson('/simulator/unionpay/pay', { orderId: req.paymentNo, outcome: 'SUCCESS' });
    await waitFor(() => (inbox.get('never')?.length ?? 0) >= 5 && inbox.get('never'));
    await new Promise((r) => setTimeout(r, 500));
    expect(inbox.get('never')).toHaveLength(5);
  });

  it('redeliver sends the same notification again', async () => {
    const req = input({ notifyUrl: notifyUrl('redeliver') });
    await adapter.createPayment(req);
    await postJson('/simulator/unionpay/pay', { orderId: req.paymentNo, outcome: 'SUCCESS' });
    const [first] = await waitFor(() => inbox.get('redeliver'));
    const parsed = (await adapter.parseNotification(first)) as Extract<ParsedNotification, { ok: true }>;
    expect(sim.redeliver(parsed.notificationId)).toBe(true);
    const both = await waitFor(() => (inbox.get('redeliver')?.length ?? 0) >= 2 && inbox.get('redeliver'));
    expect(await adapter.parseNotification(both[1])).toMatchObject({ ok: true, notificationId: parsed.notificationId });
  });
});

describe('transport failures', () => {
  const at = (gatewayUrl: string, over: Partial<UnionPayConfig> = {}) => new UnionPayProvider({ ...config, gatewayUrl, ...over });

  it('an answer changed after signing → ProviderSignatureError (a forged qrCode or origRespCode cannot steer the caller)', async () => {
    const tamper = at(`${origin}/tamper/gateway/api/`);
    expect(await rejection(tamper.createPayment(input()))).toBeInstanceOf(ProviderSignatureError);
    const req = input();
    const created = await adapter.createPayment(req);
    const err = await rejection(tamper.queryPayment({ ...req, providerReference: created.providerReference }));
    expect(err).toBeInstanceOf(ProviderSignatureError);
    expect((err as Error).message).toMatch(/invalid signature/);
  });

  it('unsigned answers, answers from a foreign chain or a non-UnionPay CN → ProviderSignatureError', async () => {
    expect(await rejection(at(`${origin}/unsigned/gateway/api/`).createPayment(input()))).toBeInstanceOf(ProviderSignatureError);
    const foreign = await rejection(at(stranger.gatewayUrl).createPayment(input()));
    expect(foreign).toBeInstanceOf(ProviderSignatureError);
    expect((foreign as Error).message).toMatch(/middle/);
    const notUnionPay = await rejection(at(wrongCn.gatewayUrl).createPayment(input()));
    expect(notUnionPay).toBeInstanceOf(ProviderSignatureError);
    expect((notUnionPay as Error).message).toMatch(/not owned by UnionPay/);
  });

  it('5xx and refused connections → ProviderNetworkError', async () => {
    expect(await rejection(at(`${origin}/broken/gateway/api/`).createPayment(input()))).toBeInstanceOf(ProviderNetworkError);
    const port = await closedPort();
    expect(await rejection(at(`http://127.0.0.1:${port}/gateway/api/`).createPayment(input()))).toBeInstanceOf(ProviderNetworkError);
  });

  it('a gateway that hangs → ProviderNetworkError within timeoutMs', async () => {
    const started = Date.now();
    const err = await rejection(at(`${origin}/hang/gateway/api/`, { timeoutMs: 300 }).createPayment(input()));
    expect(err).toBeInstanceOf(ProviderNetworkError);
    expect((err as Error).message).toMatch(/no answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('the simulator refuses a request signed with the wrong merchant key: respCode 11 (signed) → ProviderRejectedError', async () => {
    const other = sim.issueMerchantCredentials();
    const wrongKey = new UnionPayProvider({ ...config, signPrivateKey: other.signPrivateKey, signCert: other.signCert });
    const err = await rejection(wrongKey.createPayment(input()));
    expect(err).toBeInstanceOf(ProviderRejectedError);
    expect(err).toMatchObject({ providerCode: '11' });
  });
});

describe('simulator housekeeping', () => {
  it('close() cancels pending retries', async () => {
    local = createUnionPaySimulator({ publicBaseUrl: origin, mountPath: '/local/unionpay', timeScale: 100, pki: sim.pki });
    const localAdapter = new UnionPayProvider(local.adapterConfig(creds));
    scripted.set('closing', [500, 500, 500, 500, 500]);
    const req = input({ notifyUrl: notifyUrl('closing') });
    await localAdapter.createPayment(req);
    expect(local.pay({ orderId: req.paymentNo, outcome: 'SUCCESS' })).toMatchObject({ ok: true });
    // Attempt 2 follows at once (UnionPay's first interval is 0); attempt 3 is due 600 ms later at ×100.
    await waitFor(() => local.notifications.length === 2);
    local.close();
    await new Promise((r) => setTimeout(r, 900));
    expect(local.notifications).toHaveLength(2);
    expect(inbox.get('closing')).toHaveLength(2);
  });

  it('credentials from the process-wide test CA work too (what a default wiring may use)', async () => {
    const standalone = generateUnionPayMerchantCredentials();
    expect(standalone.merId).toMatch(/^777290058\d{6}$/);
    const standaloneAdapter = new UnionPayProvider(sim.adapterConfig(standalone));
    expect(standaloneAdapter.certId).toBe(standalone.certId);
    expect((await standaloneAdapter.createPayment(input())).qrCodeUrl).toMatch(/^https:\/\/qr\.95516\.com\//);
  });

  it("the simulator's chain is exposed as PEM and its signer names UnionPay", () => {
    expect(sim.rootCertPem).toContain('BEGIN CERTIFICATE');
    expect(sim.middleCertPem).toContain('BEGIN CERTIFICATE');
    expect(sim.gatewayUrl).toBe(`${origin}/simulator/unionpay/gateway/api/`);
    expect(sim.signerCertPem).not.toBe(stranger.signerCertPem);
  });
});
