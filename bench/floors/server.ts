/**
 * The floor server: what the same machine can do at minimum for each thing the service exists for, as one
 * `node:http` process like the service (one port; HTTP + WebSocket):
 *
 * - `POST /graphql`          createOrder floor (floors/create-order.ts)
 * - `POST /notify/wechatpay` payment callback floor (floors/callback.ts)
 * - `WS /graphql`            realtime floor: raw `ws`, one shared Redis subscriber (floors/ws.ts)
 * - `GET /readyz`            200 once the database and Redis answer
 *
 * Configured by the bench through the environment (PORT, DATABASE_URL, REDIS_URL, JWT_SECRET, WECHATPAY_*).
 */
import { createServer, type IncomingMessage } from 'node:http';
import { Redis } from 'ioredis';
import { callbackFloor } from './callback';
import { createOrderFloor } from './create-order';
import { openStore } from './store';
import { attachRealtimeFloor } from './ws';

function readBody(req: IncomingMessage, limit = 256 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) reject(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function main(): Promise<void> {
  const env = process.env;
  const store = openStore(env.DATABASE_URL!);
  const pub = new Redis(env.REDIS_URL!, { lazyConnect: false, maxRetriesPerRequest: 2, enableAutoPipelining: true, connectionName: 'floor-pub' });
  const createOrder = createOrderFloor(store, env.JWT_SECRET!);
  const callback = callbackFloor(store, pub, {
    mchid: env.WECHATPAY_MCHID!,
    appid: env.WECHATPAY_APPID!,
    apiV3Key: env.WECHATPAY_APIV3_KEY!,
    platformPublicKey: env.WECHATPAY_PUBLIC_KEY!,
    platformPublicKeyId: env.WECHATPAY_PUBLIC_KEY_ID!,
  });

  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/graphql') {
      readBody(req).then((b) => createOrder(req, res, b), () => res.writeHead(413).end());
      return;
    }
    if (req.method === 'POST' && req.url === '/notify/wechatpay') {
      readBody(req).then((b) => callback(req, res, b), () => res.writeHead(413).end());
      return;
    }
    if (req.method === 'GET' && (req.url === '/readyz' || req.url === '/healthz')) {
      Promise.all([store.ping(), pub.ping(), realtime.ready()]).then(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}'),
        () => res.writeHead(503).end(),
      );
      return;
    }
    res.writeHead(404).end();
  });
  const realtime = attachRealtimeFloor(server, env.REDIS_URL!, env.JWT_SECRET!);
  await new Promise<void>((r) => server.listen(Number(env.PORT ?? 0), env.HOST ?? '127.0.0.1', r));

  const stop = async () => {
    server.close();
    server.closeAllConnections();
    await realtime.close();
    await pub.quit().catch(() => undefined);
    await store.close().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
