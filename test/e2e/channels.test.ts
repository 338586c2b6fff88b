import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MERCHANT_ID } from '../../src/shared/db/entity';
import { startTestApp, type TestApp } from '../helpers/app';
import { PAYMENT_STATUS_SUBSCRIPTION, Subscriber } from '../helpers/ws';

const PAY = `mutation($input: PayOrderInput!) { payOrder(input: $input) {
  payment { id paymentNo channel status amount } qrCodeUrl qrCodeImage redirectUrl jsapiParams clientSecret } }`;

interface Session {
  payment: { id: string; paymentNo: string; channel: string; amount: number };
  qrCodeUrl?: string;
  qrCodeImage?: string;
  redirectUrl?: string;
  jsapiParams?: string;
  clientSecret?: string;
}

async function openInBrowser(s: Session): Promise<void> {
  expect((await fetch(s.redirectUrl!)).status).toBe(200);
}

/** What the browser does with UNIONPAY_GATEWAY's redirectUrl: our page auto-submits a signed form to the gateway. */
async function submitUnionPayFrontForm(s: Session): Promise<void> {
  const page = await fetch(s.redirectUrl!);
  expect(page.status).toBe(200);
  const html = await page.text();
  const action = /<form[^>]*action="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&');
  const unescape = (v: string) => v.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  const fields = [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map(([, k, v]) => [unescape(k!), unescape(v!)]);
  const cashier = await fetch(action, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
  expect(cashier.status).toBe(200);
}

/**
 * For every channel of the contract: payOrder through the adapter to its simulator, the customer pays on the
 * simulator's scripted endpoint, the provider's own signed notification comes back, and the checkout subscription
 * sees PAID.
 */
const CHANNELS: Array<{
  channel: string;
  input?: Record<string, unknown>;
  expectSession: (s: Session) => void;
  /** What the customer's browser does first (a page/WAP/gateway payment exists at the provider only then). */
  open?: (s: Session) => Promise<void>;
  pay: (s: Session) => [path: string, body: Record<string, unknown>];
}> = [
  {
    channel: 'WECHAT_NATIVE',
    expectSession: (s) => expect(s.qrCodeUrl).toMatch(/^weixin:\/\//),
    pay: (s) => ['/simulator/wechatpay/pay', { code_url: s.qrCodeUrl, outcome: 'SUCCESS' }],
  },
  {
    channel: 'WECHAT_JSAPI',
    input: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
    expectSession: (s) => expect(JSON.parse(s.jsapiParams!).package).toMatch(/^prepay_id=/),
    pay: (s) => ['/simulator/wechatpay/pay', { prepay_id: JSON.parse(s.jsapiParams!).package.slice('prepay_id='.length), outcome: 'SUCCESS' }],
  },
  {
    channel: 'WECHAT_H5',
    input: { clientIp: '203.0.113.9' },
    expectSession: (s) => expect(s.redirectUrl).toContain('/simulator/wechatpay/h5'),
    pay: (s) => ['/simulator/wechatpay/pay', { out_trade_no: s.payment.paymentNo, outcome: 'SUCCESS' }],
  },
  {
    channel: 'ALIPAY_QR',
    expectSession: (s) => expect(s.qrCodeImage).toMatch(/^data:image\/png;base64,/),
    pay: (s) => ['/simulator/alipay/pay', { qr_code: s.qrCodeUrl, outcome: 'SUCCESS' }],
  },
  {
    channel: 'ALIPAY_PAGE',
    input: { returnUrl: 'http://127.0.0.1/back' },
    open: openInBrowser,
    expectSession: (s) => expect(s.redirectUrl).toContain('/simulator/alipay/gateway.do?'),
    pay: (s) => ['/simulator/alipay/pay', { out_trade_no: s.payment.paymentNo, outcome: 'SUCCESS' }],
  },
  {
    channel: 'ALIPAY_WAP',
    input: { returnUrl: 'http://127.0.0.1/back' },
    open: openInBrowser,
    expectSession: (s) => expect(s.redirectUrl).toContain('method=alipay.trade.wap.pay'),
    pay: (s) => ['/simulator/alipay/pay', { out_trade_no: s.payment.paymentNo, outcome: 'SUCCESS' }],
  },
  {
    channel: 'UNIONPAY_QR',
    input: { clientIp: '203.0.113.9' },
    expectSession: (s) => expect(s.qrCodeUrl).toBeTruthy(),
    pay: (s) => ['/simulator/unionpay/pay', { orderId: s.payment.paymentNo, outcome: 'SUCCESS' }],
  },
  {
    channel: 'UNIONPAY_GATEWAY',
    input: { clientIp: '203.0.113.9', returnUrl: 'http://127.0.0.1/back' },
    open: submitUnionPayFrontForm,
    expectSession: (s) => expect(s.redirectUrl).toBeTruthy(),
    pay: (s) => ['/simulator/unionpay/pay', { orderId: s.payment.paymentNo, outcome: 'SUCCESS' }],
  },
  {
    channel: 'STRIPE_CARD',
    expectSession: (s) => expect(s.clientSecret).toMatch(/^pi_\w+_secret_\w+$/),
    pay: (s) => ['/simulator/stripe/confirm', { payment_intent: s.clientSecret!.split('_secret_')[0], outcome: 'SUCCESS' }],
  },
];

describe('every channel, paid in its simulator, reaches PAID on the subscription', () => {
  let t: TestApp;
  let alice: string;
  let available: string[] = [];
  const subscribers: Subscriber[] = [];

  beforeAll(async () => {
    t = await startTestApp('sqlite', { SIMULATOR_TIME_SCALE: '1000' });
    alice = t.token('alice');
    available = t.app.providers.registry.channels(DEFAULT_MERCHANT_ID);
    await t.gql(`mutation { createProduct(input: { sku: "TEA", name: "Tea", priceAmount: 1999, stock: 1000 }) { id } }`, {}, t.token('root', 'admin'));
  });
  afterAll(async () => {
    await Promise.all(subscribers.map((s) => s.close()));
    await t?.close();
  });

  it.each(CHANNELS)('$channel', async ({ channel, input, expectSession, open, pay }) => {
    expect(available).toContain(channel);
    const order = (await t.gql(`mutation { createOrder(input: { items: [{ sku: "TEA", quantity: 1 }] }) { id totalAmount } }`, {}, alice)).data.createOrder;
    const sub = new Subscriber(t.url, alice, PAYMENT_STATUS_SUBSCRIPTION, { orderId: order.id });
    subscribers.push(sub);
    await sub.until((s) => s.events.length >= 1);

    const res = await t.gql(PAY, { input: { orderId: order.id, channel, ...input } }, alice);
    expect(res.errors).toBeUndefined();
    const session: Session = res.data.payOrder;
    expect(session.payment).toMatchObject({ channel, amount: order.totalAmount });
    expectSession(session);

    if (open) await open(session);
    const [path, body] = pay(session);
    const paid = await fetch(`${t.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(paid.status).toBe(200);
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'), 3000);
    expect(sub.events.at(-1).paymentStatusChanged).toMatchObject({ channel, paymentStatus: 'SUCCEEDED', paidAmount: order.totalAmount });
  });
});
