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

export interface LifecycleFixture {
  t: TestApp;
  admin: string;
  alice: string;
  /** alice orders `quantity` TEA (10 000 fen each, stock 100). */
  newOrder(quantity?: number): Promise<{ id: string; totalAmount: number }>;
  /** The TEA product's stock. */
  stock(): Promise<number>;
  /** alice's subscription to the order's payment status, closed with the app. */
  subscribe(orderId: string): Subscriber;
}

/**
 * The app the payment-lifecycle suites share, registered in the calling `describe`: the simulators 1 000× faster,
 * a 3 s payment timeout and query fallback at 1 s and 2 s, one product (TEA), an admin and a customer (alice).
 * Its fields are set once the suite's `beforeAll` hooks run (this one first, being registered first).
 */
export function lifecycleFixture(db: Db): LifecycleFixture {
  const subscribers: Subscriber[] = [];
  const fx = {
    newOrder: async (quantity = 1) =>
      (await fx.t.gql(`mutation($q: Int!) { createOrder(input: { items: [{ sku: "TEA", quantity: $q }] }) { id totalAmount } }`, { q: quantity }, fx.alice))
        .data.createOrder as { id: string; totalAmount: number },
    stock: async () => (await fx.t.gql(`{ products { sku stock } }`, {}, fx.admin)).data.products[0].stock as number,
    subscribe: (orderId: string) => {
      const s = new Subscriber(fx.t.url, fx.alice, PAYMENT_STATUS_SUBSCRIPTION, { orderId });
      subscribers.push(s);
      return s;
    },
  } as LifecycleFixture;
  beforeAll(async () => {
    fx.t = await startTestApp(db, { SIMULATOR_TIME_SCALE: '1000', PAYMENT_TIMEOUT_SECONDS: '3', PAYMENT_QUERY_DELAYS: '1,2' });
    fx.admin = fx.t.token('root', 'admin');
    fx.alice = fx.t.token('alice');
    await fx.t.gql(`mutation { createProduct(input: { sku: "TEA", name: "Tea", priceAmount: 10000, stock: 100 }) { id } }`, {}, fx.admin);
  });
  afterAll(async () => {
    await Promise.all(subscribers.map((s) => s.close()));
    await fx.t?.close();
  });
  return fx;
}
