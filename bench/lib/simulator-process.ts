/**
 * The WeChat Pay simulator in its own process (as in test/e2e/multi-instance.test.ts: another process's express
 * app), so its RSA work (verifying payOrder's signed requests, signing answers and notifications) is not charged to
 * the service or to the bench client. Started by `startSimulator` with the platform key and merchant credentials
 * in the environment; `POST /simulator/wechatpay/pay` is the customer's phone.
 */
import 'reflect-metadata';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createWechatPaySimulator, type MerchantCredentials } from '../../src/simulators/wechatpay';
import { serveRpc } from './rpc';

async function main(): Promise<void> {
  const app = express();
  const server = createServer(app);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const sim = createWechatPaySimulator({
    publicBaseUrl: `http://127.0.0.1:${port}`,
    privateKeyPem: process.env.SIM_PRIVATE_KEY_PEM!,
    publicKeyId: process.env.SIM_PUBLIC_KEY_ID!,
    timeScale: 1000,
  });
  const credentials = JSON.parse(process.env.SIM_MERCHANT!) as MerchantCredentials;
  const adapter = sim.adapterConfig(credentials);
  app.use('/simulator/wechatpay', sim.router);
  serveRpc({
    info: () => ({ port, baseUrl: adapter.baseUrl, adapter }),
    stats: () => {
      const n = sim.notifications;
      return { attempts: n.length, acknowledged: n.filter((a) => a.acknowledged).length, failed: n.filter((a) => !a.acknowledged).length };
    },
  });
  process.on('SIGTERM', () => {
    sim.close();
    server.close();
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 200).unref();
  });
}

void main();
