import { afterAll, beforeAll } from 'vitest';
import { startTestApp, type Db, type TestApp } from './app';
import { PAYMENT_STATUS_SUBSCRIPTION, Subscriber } from './ws';

/** Reads until `ok` holds (polling every 100 ms), or fails with the last value read. */
export async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const postJson = (url: string, body: unknown): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export interface AppFixture {
  t: TestApp;
  admin: string;
  alice: string;
  /** alice orders `quantity` TEA. */
  newOrder(quantity?: number): Promise<{ id: string; orderNo: string; totalAmount: number }>;
  /** The TEA product's stock. */
  stock(): Promise<number>;
  /** alice's subscription to the order's payment status, closed with the app. */
  subscribe(orderId: string): Subscriber;
}

/**
 * The app the payment suites share, registered in the calling `describe`: `env` on top of the test defaults, one
 * product (TEA, `priceAmount` fen, `stock` in stock), an admin and a customer (alice). Its fields are set once the
 * suite's `beforeAll` hooks run (this one first, being registered first).
 */
export function appFixture(db: Db, opts: { env?: Record<string, string>; priceAmount?: number; stock?: number } = {}): AppFixture {
  const subscribers: Subscriber[] = [];
  const fx = {
    newOrder: async (quantity = 1) => {
      const res = await fx.t.gql(
        `mutation($q: Int!) { createOrder(input: { items: [{ sku: "TEA", quantity: $q }] }) { id orderNo totalAmount } }`,
        { q: quantity },
        fx.alice,
      );
      if (res.errors) throw new Error(`createOrder failed: ${JSON.stringify(res.errors)}`);
      return res.data.createOrder as { id: string; orderNo: string; totalAmount: number };
    },
    stock: async () => (await fx.t.gql(`{ products { sku stock } }`, {}, fx.admin)).data.products[0].stock as number,
    subscribe: (orderId: string) => {
      const s = new Subscriber(fx.t.url, fx.alice, PAYMENT_STATUS_SUBSCRIPTION, { orderId });
      subscribers.push(s);
      return s;
    },
  } as AppFixture;
  beforeAll(async () => {
    fx.t = await startTestApp(db, opts.env ?? {});
    fx.admin = fx.t.token('root', 'admin');
    fx.alice = fx.t.token('alice');
    const res = await fx.t.gql(
      `mutation($p: Int!, $s: Int!) { createProduct(input: { sku: "TEA", name: "Tea", priceAmount: $p, stock: $s }) { id } }`,
      { p: opts.priceAmount ?? 10000, s: opts.stock ?? 100 },
      fx.admin,
    );
    if (res.errors) throw new Error(`createProduct failed: ${JSON.stringify(res.errors)}`);
  });
  afterAll(async () => {
    await Promise.all(subscribers.map((s) => s.close()));
    await fx.t?.close();
  });
  return fx;
}

/** The lifecycle suites' app: the simulators 1 000× faster, a 3 s payment timeout, query fallback at 1 s and 2 s. */
export function lifecycleFixture(db: Db): AppFixture {
  return appFixture(db, { env: { SIMULATOR_TIME_SCALE: '1000', PAYMENT_TIMEOUT_SECONDS: '3', PAYMENT_QUERY_DELAYS: '1,2' } });
}
