import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CHECKOUT_CONTENT_SECURITY_POLICY } from '../../src/checkout/checkout.routes';
import { PaymentChannel } from '../../src/payments/channels';
import { DEFAULT_MERCHANT_ID } from '../../src/shared/db/entity';
import { startTestApp, type TestApp } from '../helpers/app';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
const IN_CI = process.env.CI === 'true';
const OUTPUT_DIR = 'test-output';
if (!HAS_CHROMIUM && !IN_CI) {
  console.warn(`[checkout-browser.test] ${CHROMIUM} not found: the browser tests are skipped (they fail when CI=true).`);
}

let t: TestApp;
let admin: string;
let alice: string;

beforeAll(async () => {
  t = await startTestApp('sqlite', { SIMULATOR_TIME_SCALE: '1000' });
  admin = t.token('root', 'admin');
  alice = t.token('alice');
  for (const p of [
    { sku: 'TEA', name: 'Longjing Tea', priceAmount: 12800, stock: 1000 },
    { sku: 'CUP', name: 'Celadon Cup', priceAmount: 2550, stock: 1000 },
  ]) {
    const res = await t.gql(`mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }`, { input: p }, admin);
    expect(res.errors).toBeUndefined();
  }
});
afterAll(async () => {
  await t?.close();
});

/** TEA ×1 + CUP ×2 = ¥179.00 (free shipping above ¥99). */
async function newOrder(token = alice): Promise<{ id: string; orderNo: string; totalAmount: number }> {
  const res = await t.gql(
    `mutation { createOrder(input: { items: [{ sku: "TEA", quantity: 1 }, { sku: "CUP", quantity: 2 }] }) { id orderNo totalAmount } }`,
    {},
    token,
  );
  expect(res.errors).toBeUndefined();
  return res.data.createOrder;
}

async function serverStatus(orderNo: string): Promise<string> {
  const res = await t.gql(`query($n: String!) { orderByNo(orderNo: $n) { status } }`, { n: orderNo }, alice);
  return res.data.orderByNo.status;
}

describe('checkout page (HTTP)', () => {
  it('answers 404 for a malformed order number', async () => {
    for (const bad of ['abc-def', 'a'.repeat(41), '%3Cscript%3E', 'abc.def', '%20']) {
      const res = await fetch(`${t.url}/checkout/${bad}`);
      expect(res.status, bad).toBe(404);
      const html = await res.text();
      expect(html).not.toContain('<script');
      expect(res.headers.get('content-security-policy')).toBe(CHECKOUT_CONTENT_SECURITY_POLICY);
    }
  });

  it('serves the page with a strict CSP and only same-origin assets, which answer 200', async () => {
    const orderNo = 'A'.repeat(40);
    const res = await fetch(`${t.url}/checkout/${orderNo}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toBe(CHECKOUT_CONTENT_SECURITY_POLICY);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self' ws: wss:");
    expect(csp).toContain("img-src 'self' data:");
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);

    const html = await res.text();
    expect(html).toContain('data-testid="payment-status"');
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script>(?!<\/script>)/);
    expect(html).not.toMatch(/\sstyle=/);
    const config = JSON.parse(/<script id="checkout-config" type="application\/json">([^<]*)<\/script>/.exec(html)![1]!);
    expect(config.orderNo).toBe(orderNo);
    expect(config.channels.map((c: { channel: string }) => c.channel)).toEqual(Object.values(PaymentChannel));

    const urls = [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&')).filter((u) => u !== 'data:,');
    expect(urls.map((u) => u.replace(/\?.*$/, '')).sort()).toEqual([
      '/checkout-assets/checkout.css',
      '/checkout-assets/checkout.js',
      '/checkout-assets/graphql-ws.min.js',
    ]);
    for (const url of urls) {
      const asset = await fetch(`${t.url}${url}`);
      expect(asset.status, url).toBe(200);
      expect(asset.headers.get('cache-control'), url).toMatch(/max-age=31536000.*immutable/);
      expect(asset.headers.get('content-type'), url).toMatch(url.includes('.css') ? /^text\/css/ : /^(text|application)\/javascript/);
      expect((await asset.arrayBuffer()).byteLength, url).toBeGreaterThan(100);
    }
    expect((await fetch(`${t.url}/checkout-assets/package.json`)).status).toBe(404);
    expect((await fetch(`${t.url}/checkout-assets/..%2Fpackage.json`)).status).toBe(404);
  });
});

describe.skipIf(!HAS_CHROMIUM && !IN_CI)(
  `checkout page (browser)${HAS_CHROMIUM ? '' : ` [SKIPPED: ${CHROMIUM} not found; set CI=true to make this fail]`}`,
  () => {
    let context: BrowserContext;
    let userDataDir: string;
    const requested: string[] = [];
    const problems: string[] = [];
    const sockets: string[] = [];

    beforeAll(async () => {
      if (!HAS_CHROMIUM) throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium)`);
      userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkout-chromium-'));
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
        viewport: { width: 900, height: 1100 },
      });
      context.on('request', (req) => requested.push(req.url()));
      await context.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => {
          console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
        });
      });
      fs.mkdirSync(OUTPUT_DIR, { recursive: true });
    });

    beforeEach(() => {
      requested.length = 0;
      problems.length = 0;
    });

    afterAll(async () => {
      await context?.close();
      if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    });

    /**
     * Records requests, HTTP errors, page errors, console errors and CSP violations of a page. The simulator's phone
     * page (not ours) has no icon link, so Chromium's automatic /favicon.ico 404 is tolerated there only.
     */
    function watch(page: Page, opts: { tolerateFavicon?: boolean } = {}): Page {
      const tolerated = (url: string) => opts.tolerateFavicon === true && new URL(url).pathname === '/favicon.ico';
      page.on('websocket', (ws) => {
        requested.push(ws.url());
        sockets.push(ws.url());
      });
      page.on('response', (r) => {
        if (r.status() >= 400 && !tolerated(r.url())) problems.push(`HTTP ${r.status()} ${r.url()}`);
      });
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error' && !tolerated(msg.location().url || 'about:blank')) {
          problems.push(`console: ${msg.text()} (${msg.location().url})`);
        }
      });
      return page;
    }

    /** Nothing left 127.0.0.1 (data: URLs never leave the page) and nothing went wrong in any page. */
    function assertClean(): void {
      const port = new URL(t.url).port;
      for (const url of requested) {
        const u = new URL(url);
        if (u.protocol === 'data:') continue;
        expect(u.hostname, url).toBe('127.0.0.1');
        expect(u.port, url).toBe(port);
      }
      expect(problems).toEqual([]);
    }

    const statusText = (page: Page) => page.getByTestId('payment-status').textContent();
    const waitForStatus = (page: Page, status: string, timeout = 5000) =>
      page.waitForFunction(
        (s) => document.querySelector('[data-testid=payment-status]')?.textContent === s,
        status,
        { timeout, polling: 20 },
      );

    async function openCheckout(orderNo: string, token = alice): Promise<Page> {
      const page = watch(await context.newPage());
      await page.goto(`${t.url}/checkout/${orderNo}#token=${token}`, { waitUntil: 'load' });
      await waitForStatus(page, 'PENDING_PAYMENT');
      await page.locator('[data-testid=connection][data-state=live]').waitFor({ timeout: 5000 });
      return page;
    }

    async function startQrPayment(page: Page, channel: PaymentChannel): Promise<{ qrCodeUrl: string; simulatorUrl: string }> {
      await page.getByTestId(`channel-${channel}`).click();
      await page.getByTestId('pay-button').click();
      const img = page.getByTestId('qr-image');
      await img.waitFor({ state: 'visible', timeout: 10_000 });
      expect(await img.getAttribute('src')).toMatch(/^data:image\/png;base64,/);
      expect(await img.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth > 0)).toBe(true);
      await waitForStatus(page, 'PAYING');
      const qrCodeUrl = (await page.getByTestId('qr-code-text').textContent())!;
      const link = page.getByTestId('simulator-link');
      await link.waitFor({ state: 'visible', timeout: 5000 });
      const simulatorUrl = await link.evaluate((a: HTMLAnchorElement) => a.href);
      return { qrCodeUrl, simulatorUrl };
    }

    /** The customer's phone: open the simulator's scan page in a second page and press Pay; PAID within 2 s. */
    async function payOnThePhone(page: Page, simulatorUrl: string, amountText: string): Promise<number> {
      const phone = watch(await context.newPage(), { tolerateFavicon: true });
      try {
        await phone.goto(simulatorUrl, { waitUntil: 'load' });
        expect(await phone.getByTestId('amount').textContent()).toContain(amountText.replace(/^¥/, ''));
        const payButton = phone.getByRole('button', { name: /^(pay|confirm)/i }).first();
        await payButton.waitFor({ state: 'visible' });
        const clicked = Date.now();
        await payButton.click();
        await waitForStatus(page, 'PAID', 5000);
        const elapsed = Date.now() - clicked;
        await phone.getByTestId('result').filter({ hasText: /\S/ }).waitFor();
        return elapsed;
      } finally {
        await phone.close();
      }
    }

    it('WeChat Native: order shown, QR code, pay on the scan page, PAID without a reload within 2 s', async () => {
      const order = await newOrder();
      const page = await openCheckout(order.orderNo);

      // The token left the address bar and lives in sessionStorage.
      expect(page.url()).toBe(`${t.url}/checkout/${order.orderNo}`);
      expect(await page.evaluate(() => sessionStorage.getItem('checkout.token'))).toBe(alice);

      // The order.
      expect(await page.getByTestId('order-no').textContent()).toBe(order.orderNo);
      const items = await page.getByTestId('item').allTextContents();
      expect(items).toHaveLength(2);
      expect(items[0]).toContain('Longjing Tea');
      expect(items[0]).toContain('¥128.00');
      expect(items[1]).toContain('Celadon Cup');
      expect(items[1]).toContain('×2');
      expect(items[1]).toContain('¥51.00');
      expect(await page.getByTestId('subtotal').textContent()).toBe('¥179.00');
      expect(await page.getByTestId('discount').textContent()).toBe('¥0.00');
      expect(await page.getByTestId('total').textContent()).toBe('¥179.00');
      expect(await page.getByTestId('expiry').textContent()).toMatch(/Pay within 1[45]:\d\d/);
      expect(await page.locator('input[name=channel]').count()).toBe(9);

      const { qrCodeUrl, simulatorUrl } = await startQrPayment(page, PaymentChannel.WECHAT_NATIVE);
      expect(qrCodeUrl).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
      expect(simulatorUrl).toBe(`${t.url}/simulator/wechatpay/scan?code_url=${encodeURIComponent(qrCodeUrl)}`);
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'checkout-wechat-qr.png'), fullPage: true });

      const elapsed = await payOnThePhone(page, simulatorUrl, '¥179.00');
      console.info(`[checkout-browser.test] WeChat Native: PAID shown ${elapsed} ms after pressing Pay on the phone`);
      expect(elapsed).toBeLessThan(2000);
      expect(await page.getByTestId('status-message').textContent()).toMatch(/^Paid ✓ ¥179\.00/);
      expect(await page.locator('#pay').isHidden()).toBe(true);
      expect(await page.url()).toBe(`${t.url}/checkout/${order.orderNo}`); // no reload, no navigation
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'checkout-wechat-paid.png'), fullPage: true });
      expect(await serverStatus(order.orderNo)).toBe('PAID');
      await page.close();
      assertClean();
    }, 60_000);

    it('Alipay QR: pay on the scan page, PAID within 2 s', async (ctx) => {
      const channels = t.app.providers.registry.channels(DEFAULT_MERCHANT_ID);
      if (!channels.includes(PaymentChannel.ALIPAY_QR)) {
        const reason = 'no alipay provider registered (ALIPAY_QR not in the provider registry): enable when the Alipay slice lands';
        console.warn(`[checkout-browser.test] Alipay test skipped: ${reason}`);
        ctx.skip(reason);
      }
      const order = await newOrder();
      const page = await openCheckout(order.orderNo);
      const { qrCodeUrl, simulatorUrl } = await startQrPayment(page, PaymentChannel.ALIPAY_QR);
      expect(simulatorUrl).toBe(`${t.url}/simulator/alipay/scan?qr_code=${encodeURIComponent(qrCodeUrl)}`);
      const elapsed = await payOnThePhone(page, simulatorUrl, '¥179.00');
      expect(elapsed).toBeLessThan(2000);
      expect(await page.getByTestId('status-message').textContent()).toMatch(/^Paid ✓ ¥179\.00/);
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'checkout-alipay-paid.png'), fullPage: true });
      expect(await serverStatus(order.orderNo)).toBe('PAID');
      await page.close();
      assertClean();
    }, 60_000);

    it('reconnect: the socket drops, the order is paid meanwhile, PAID shows once it is back (snapshot)', async () => {
      const order = await newOrder();
      const page = await openCheckout(order.orderNo);
      const { qrCodeUrl } = await startQrPayment(page, PaymentChannel.WECHAT_NATIVE);
      const socketsBefore = sockets.length;

      // Drop the page's socket and keep it away for a while (the hook holds the client's retry).
      await page.evaluate(() => (window as unknown as { __checkout: { dropSocket(ms: number): void } }).__checkout.dropSocket(6000));
      await page.locator('[data-testid=connection][data-state=reconnecting]').waitFor({ timeout: 2000 });
      expect(await page.getByTestId('connection').textContent()).toContain('reconnecting');

      // Pay at the provider while the page is away; the server learns it from the callback.
      const paid = await fetch(`${t.url}/simulator/wechatpay/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code_url: qrCodeUrl, outcome: 'SUCCESS' }),
      });
      expect(paid.status).toBe(200);
      await expect.poll(() => serverStatus(order.orderNo), { timeout: 4000, interval: 50 }).toBe('PAID');

      // The page did not hear it: no socket, still PAYING.
      expect(await statusText(page)).toBe('PAYING');
      expect(await page.getByTestId('connection').getAttribute('data-state')).toBe('reconnecting');
      expect(sockets.length).toBe(socketsBefore);

      // Back online: a new socket, the subscription's snapshot says PAID.
      await waitForStatus(page, 'PAID', 10_000);
      expect(sockets.length).toBe(socketsBefore + 1);
      await page.locator('[data-testid=connection][data-state=live]').waitFor({ timeout: 2000 });
      expect(await page.getByTestId('status-message').textContent()).toMatch(/^Paid ✓/);
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'checkout-reconnect-paid.png'), fullPage: true });
      await page.close();
      assertClean();
    }, 60_000);

    it('WeChat H5: "Continue to pay" leaves for the provider page; back on checkout the token is still there and PAID shows', async () => {
      const order = await newOrder();
      const page = await openCheckout(order.orderNo);
      await page.getByTestId('channel-WECHAT_H5').click();
      await page.getByTestId('pay-button').click();
      const go = page.getByTestId('redirect-button');
      await go.waitFor({ state: 'visible', timeout: 10_000 });
      expect(await go.textContent()).toBe('Continue to pay');
      expect(await go.evaluate((a: HTMLAnchorElement) => a.href)).toContain(`${t.url}/simulator/wechatpay/h5?prepay_id=`);
      await waitForStatus(page, 'PAYING');

      await go.click();
      await page.waitForURL((u) => u.pathname === '/simulator/wechatpay/h5');
      await page.getByRole('button', { name: 'Pay', exact: true }).click();
      await page.getByTestId('result').filter({ hasText: /\S/ }).waitFor();

      // Back to the checkout page (no fragment this time): the token comes from sessionStorage, the snapshot says PAID.
      await page.goto(`${t.url}/checkout/${order.orderNo}`);
      await waitForStatus(page, 'PAID', 5000);
      expect(await page.getByTestId('status-message').textContent()).toMatch(/^Paid ✓ ¥179\.00/);
      await page.close();
      // The provider's page is the simulator's (no icon link: Chromium asks for /favicon.ico there).
      expect(problems.filter((p) => !p.includes('/favicon.ico'))).toEqual([]);
    }, 60_000);

    it('cancel: the customer cancels the order and the page says so', async () => {
      const order = await newOrder();
      const page = await openCheckout(order.orderNo);
      await page.getByTestId('cancel-button').click();
      await page.getByTestId('cancel-confirm').click();
      await waitForStatus(page, 'CANCELLED');
      expect(await page.getByTestId('status-message').textContent()).toContain('cancelled');
      expect(await page.locator('#pay').isHidden()).toBe(true);
      expect(await serverStatus(order.orderNo)).toBe('CANCELLED');
      await page.close();
      assertClean();
    }, 60_000);

    it("a channel the server cannot serve shows payOrder's message; JSAPI asks for the openid", async () => {
      const order = await newOrder();
      const page = await openCheckout(order.orderNo);
      await page.getByTestId('channel-WECHAT_JSAPI').click();
      await page.getByTestId('openid').waitFor({ state: 'visible' });
      await page.getByTestId('pay-button').click();
      expect(await page.getByTestId('pay-error').textContent()).toContain('openid');

      const served = t.app.providers.registry.channels(DEFAULT_MERCHANT_ID);
      const unserved = Object.values(PaymentChannel).find((c) => !served.includes(c));
      if (unserved) {
        await page.getByTestId(`channel-${unserved}`).click();
        await page.getByTestId('pay-button').click();
        const error = page.getByTestId('pay-error');
        await error.filter({ hasText: /\S/ }).waitFor({ timeout: 5000 });
        const direct = await t.gql(`mutation($input: PayOrderInput!) { payOrder(input: $input) { payment { id } } }`, { input: { orderId: order.id, channel: unserved } }, alice);
        expect(direct.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
        expect(await error.textContent()).toBe(direct.errors![0].message);
      }
      expect(await statusText(page)).toBe('PENDING_PAYMENT');
      await page.close();
      // An unserved channel's error is an HTTP 200 GraphQL error or a 4xx: only the page must stay clean.
      const pageProblems = problems.filter((p) => !/HTTP 4\d\d .*\/graphql$|Failed to load resource/.test(p));
      expect(pageProblems).toEqual([]);
    }, 60_000);
  },
);
