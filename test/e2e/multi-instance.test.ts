import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signToken } from '../../src/shared/auth';
import { createWechatPaySimulator, generateMerchantCredentials, type WechatPaySimulator } from '../../src/simulators/wechatpay';
import { TEST_JWT_SECRET } from '../helpers/app';
import { freePort, startServiceProcess, type ServiceProcess } from '../helpers/process';
import { TEST_REDIS_URL, createPostgresDatabase } from '../helpers/services';
import { PAYMENT_STATUS_SUBSCRIPTION, Subscriber } from '../helpers/ws';

const available = inject('postgres') && inject('redis');

/**
 * Two `npm start` processes sharing PostgreSQL and Redis behind an imaginary load balancer: the checkout screen holds
 * its socket on instance A, WeChat Pay's callback lands on instance B, and A's subscriber still sees PAID at once.
 * WeChat Pay is a simulator in this test process, reached by both instances over HTTP with shared credentials.
 */
describe.skipIf(!available)('two instances on PostgreSQL and Redis', () => {
  let db: { url: string; drop: () => Promise<void> };
  let simServer: Server;
  let sim: WechatPaySimulator;
  let a: ServiceProcess;
  let b: ServiceProcess;
  let sub: Subscriber | undefined;
  const token = (sub: string, role: 'customer' | 'admin' = 'customer') => signToken(TEST_JWT_SECRET, { id: sub, role });

  beforeAll(async () => {
    db = await createPostgresDatabase();
    const simApp = express();
    simServer = createServer(simApp);
    await new Promise<void>((r) => simServer.listen(0, '127.0.0.1', r));
    sim = createWechatPaySimulator({ publicBaseUrl: `http://127.0.0.1:${(simServer.address() as AddressInfo).port}`, timeScale: 1000 });
    simApp.use('/simulator/wechatpay', sim.router);
    const wechat = sim.adapterConfig(generateMerchantCredentials());
    const portB = await freePort();
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      JWT_SECRET: TEST_JWT_SECRET,
      PAYMENT_SIMULATOR: 'off',
      SEED_DEMO: 'false',
      WECHATPAY_MCHID: wechat.mchid,
      WECHATPAY_APPID: wechat.appid,
      WECHATPAY_MERCHANT_SERIAL: wechat.merchantSerial,
      WECHATPAY_MERCHANT_PRIVATE_KEY: wechat.merchantPrivateKey,
      WECHATPAY_APIV3_KEY: wechat.apiV3Key,
      WECHATPAY_PUBLIC_KEY: wechat.platformPublicKey,
      WECHATPAY_PUBLIC_KEY_ID: wechat.platformPublicKeyId,
      WECHATPAY_BASE_URL: wechat.baseUrl,
      // Both instances build notify_urls on the public address, which here is B's: the callback lands on B.
      PUBLIC_BASE_URL: `http://127.0.0.1:${portB}`,
    };
    a = await startServiceProcess(env);
    b = await startServiceProcess({ ...env, PORT: String(portB) });
  });

  afterAll(async () => {
    await sub?.close();
    await a?.stop();
    await b?.stop();
    sim?.close();
    await new Promise((r) => simServer?.close(r));
    await db?.drop();
  });

  const gql = async (url: string, query: string, variables: Record<string, unknown>, bearer: string) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: any; errors?: unknown };
    expect(body.errors).toBeUndefined();
    return body.data;
  };

  it('a subscriber on A receives PAID when B handled the callback', async () => {
    await gql(a.url, `mutation { createProduct(input: { sku: "TEA", name: "Tea", priceAmount: 100, stock: 10 }) { id } }`, {}, token('root', 'admin'));
    const order = (await gql(b.url, `mutation { createOrder(input: { items: [{ sku: "TEA", quantity: 2 }] }) { id totalAmount } }`, {}, token('alice'))).createOrder;

    sub = new Subscriber(a.url, token('alice'), PAYMENT_STATUS_SUBSCRIPTION, { orderId: order.id });
    await sub.until((s) => s.events.length >= 1, 5000);
    const session = (await gql(a.url, `mutation($id: ID!) { payOrder(input: { orderId: $id, channel: WECHAT_NATIVE }) { qrCodeUrl payment { paymentNo } } }`, { id: order.id }, token('alice'))).payOrder;
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAYING'), 5000);

    const paid = sim.pay({ code_url: session.qrCodeUrl, outcome: 'SUCCESS' });
    expect(paid.ok).toBe(true);
    const started = Date.now();
    await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'), 3000);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(sub.events.at(-1).paymentStatusChanged).toMatchObject({ paymentNo: session.payment.paymentNo, paidAmount: order.totalAmount });

    const applied = (url: string) =>
      fetch(`${url}/metrics`).then(async (r) => /payment_notifications_total\{provider="wechatpay",outcome="applied"\} 1/.test(await r.text()));
    // The event reaches A as soon as B commits; B counts the notification when it replies, a moment later.
    for (let i = 0; i < 50 && !(await applied(b.url)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await applied(b.url)).toBe(true);
    expect(await applied(a.url)).toBe(false);
    expect(sim.notifications.filter((n) => n.url.startsWith(b.url) && n.acknowledged)).toHaveLength(1);
  });

  it('each instance stops gracefully on SIGTERM and exits 0', async () => {
    await sub?.close();
    sub = undefined;
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
  });
});
