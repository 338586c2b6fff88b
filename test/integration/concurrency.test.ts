import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { StaleQuote } from '../../src/catalog/catalog.service';
import { Sql } from '../../src/shared/db/sql';
import { codeOf, startTestApp, type Db, type TestApp } from '../helpers/app';
import { markPaidThroughMachine } from '../helpers/orders';

const databases: Db[] = inject('postgres') ? ['sqlite', 'postgresql'] : ['sqlite'];

describe.each(databases)('concurrency on %s', (db) => {
  let t: TestApp;
  let admin: string;

  beforeAll(async () => {
    t = await startTestApp(db);
    admin = t.token('root', 'admin');
  });
  afterAll(async () => t?.close());

  const createOrder = (token: string, input: Record<string, unknown>) =>
    t.gql(`mutation($input: CreateOrderInput!) { createOrder(input: $input) { id status } }`, { input }, token);

  it('20 concurrent orders for a SKU with stock 5: exactly 5 orders, stock 0, the rest OUT_OF_STOCK', async () => {
    await t.gql(`mutation { createProduct(input: { sku: "HOT", name: "Hot item", priceAmount: 100, stock: 5 }) { id } }`, {}, admin);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => createOrder(t.token(`buyer${i}`), { items: [{ sku: 'HOT', quantity: 1 }] })),
    );
    const ok = results.filter((r) => r.data?.createOrder);
    const codes = results.filter((r) => r.errors).map(codeOf);
    expect(ok).toHaveLength(5);
    expect(codes).toEqual(Array(15).fill('OUT_OF_STOCK'));
    const stock = (await t.gql(`{ products { sku stock } }`, {}, admin)).data.products.find((p: any) => p.sku === 'HOT').stock;
    expect(stock).toBe(0);
    const all = await t.gql(`{ orders(first: 100) { edges { node { id } } } }`, {}, admin);
    expect(all.data.orders.edges).toHaveLength(5);
  });

  it('an order priced from a read reserves nothing once the product changed since (price, availability, stock)', async () => {
    const { catalog, orm } = t.app.services;
    const created = await t.gql(`mutation { createProduct(input: { sku: "STALE", name: "Stale", priceAmount: 100, stock: 10 }) { id } }`, {}, admin);
    const id = created.data.createProduct.id;
    const stock = async () => (await t.gql(`{ products { sku stock } }`, {}, admin)).data.products.find((p: any) => p.sku === 'STALE').stock;
    const readThenReserve = async (change: () => Promise<unknown>, quantity = 2) => {
      const lines = await catalog.productsForLines(Sql.on(orm.em.fork()), [{ sku: 'STALE', quantity }]);
      await change();
      return Sql.transaction(orm.em, (sql) => catalog.reserveQuoted(sql, lines));
    };
    const update = (input: string) => t.gql(`mutation($id: ID!) { updateProduct(id: $id, input: { ${input} }) { id } }`, { id }, admin);
    await expect(readThenReserve(() => update('priceAmount: 150'))).rejects.toBeInstanceOf(StaleQuote);
    await expect(readThenReserve(() => update('active: false'))).rejects.toBeInstanceOf(StaleQuote);
    await update('active: true');
    await expect(readThenReserve(() => t.gql(`mutation($id: ID!) { restockProduct(id: $id, quantity: -9) { id } }`, { id }, admin))).rejects.toBeInstanceOf(StaleQuote);
    expect(await stock()).toBe(1);
    await readThenReserve(async () => undefined, 1);
    expect(await stock()).toBe(0);
    // Through the API: priced at the price in force, OUT_OF_STOCK when short.
    await t.gql(`mutation($id: ID!) { restockProduct(id: $id, quantity: 5) { id } }`, { id }, admin);
    const order = await t.gql(`mutation { createOrder(input: { items: [{ sku: "STALE", quantity: 2 }] }) { subtotalAmount } }`, {}, t.token('reader'));
    expect(order.data.createOrder.subtotalAmount).toBe(300);
    expect(codeOf(await createOrder(t.token('reader'), { items: [{ sku: 'STALE', quantity: 4 }] }))).toBe('OUT_OF_STOCK');
    expect(await stock()).toBe(3);
  });

  it('a product changed by another instance (straight in the database) after this one priced orders from it: the next order has the new price and name', async () => {
    await t.gql(`mutation { createProduct(input: { sku: "MOVED", name: "Before", priceAmount: 100, stock: 10 }) { id } }`, {}, admin);
    const order = async () =>
      (await t.gql(`mutation { createOrder(input: { items: [{ sku: "MOVED", quantity: 2 }] }) { subtotalAmount items { name } } }`, {}, t.token('mover'))).data
        .createOrder;
    expect(await order()).toEqual({ subtotalAmount: 200, items: [{ name: 'Before' }] });
    const conn = t.app.services.orm.em.getConnection();
    await conn.execute(`update products set price_amount = 150 where sku = 'MOVED'`);
    expect(await order()).toEqual({ subtotalAmount: 300, items: [{ name: 'Before' }] });
    expect(await order()).toEqual({ subtotalAmount: 300, items: [{ name: 'Before' }] });
    await conn.execute(`update products set name = 'After' where sku = 'MOVED'`);
    expect(await order()).toEqual({ subtotalAmount: 300, items: [{ name: 'After' }] });
    await conn.execute(`update products set active = ${db === 'sqlite' ? 0 : 'false'} where sku = 'MOVED'`);
    expect(codeOf(await createOrder(t.token('mover'), { items: [{ sku: 'MOVED', quantity: 1 }] }))).toBe('BAD_USER_INPUT');
    const stock = (await t.gql(`{ products { sku stock } }`, {}, admin)).data.products.find((p: any) => p.sku === 'MOVED').stock;
    expect(stock).toBe(2);
  });

  it('10 concurrent orders for the last use of a coupon: one order, the rest COUPON_INVALID with their stock given back', async () => {
    await t.gql(`mutation { createProduct(input: { sku: "LAST", name: "Last", priceAmount: 1000, stock: 50 }) { id } }`, {}, admin);
    await t.gql(`mutation { createCoupon(input: { code: "ONCE", kind: FIXED, value: 100, usageLimit: 1 }) { id } }`, {}, admin);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => createOrder(t.token(`saver${i}`), { items: [{ sku: 'LAST', quantity: 2 }], couponCode: 'ONCE' })),
    );
    expect(results.filter((r) => r.data?.createOrder)).toHaveLength(1);
    expect(results.filter((r) => r.errors).map(codeOf)).toEqual(Array(9).fill('COUPON_INVALID'));
    const stock = (await t.gql(`{ products { sku stock } }`, {}, admin)).data.products.find((p: any) => p.sku === 'LAST').stock;
    expect(stock).toBe(48);
  });

  it('the same idempotency key sent 10 times at once creates one order', async () => {
    await t.gql(`mutation { createProduct(input: { sku: "IDEM", name: "Idem", priceAmount: 100, stock: 100 }) { id } }`, {}, admin);
    const dave = t.token('dave');
    const input = { items: [{ sku: 'IDEM', quantity: 1 }], idempotencyKey: 'same-key' };
    const results = await Promise.all(Array.from({ length: 10 }, () => createOrder(dave, input)));
    const ids = new Set(results.map((r) => r.data?.createOrder?.id));
    expect(results.every((r) => !r.errors)).toBe(true);
    expect(ids.size).toBe(1);
    const stock = (await t.gql(`{ products { sku stock } }`, {}, admin)).data.products.find((p: any) => p.sku === 'IDEM').stock;
    expect(stock).toBe(99);
  });

  it('concurrent cancelOrder and shipOrder on one order: one wins, the other INVALID_TRANSITION', async () => {
    await t.gql(`mutation { createProduct(input: { sku: "RACE", name: "Race", priceAmount: 100, stock: 100 }) { id } }`, {}, admin);
    for (let round = 0; round < 5; round++) {
      const erin = t.token('erin');
      const { data } = await createOrder(erin, { items: [{ sku: 'RACE', quantity: 1 }] });
      const id = data.createOrder.id;
      // Cancel needs PENDING_PAYMENT/PAYING and ship needs PAID, so the race is the customer's cancel against the
      // payment + ship path: whichever commits first makes the other an INVALID_TRANSITION, never both.
      const [cancel, paidThenShip] = await Promise.allSettled([
        t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id }, erin),
        (async () => {
          await markPaidThroughMachine(t.app, id);
          return t.gql(`mutation($id: ID!) { shipOrder(orderId: $id, carrier: "SF", trackingNo: "SF0001") { status } }`, { id }, admin);
        })(),
      ]);
      const final = (await t.gql(`query($id: ID!) { order(id: $id) { status history { to } } }`, { id }, admin)).data.order;
      if (final.status === 'CANCELLED') {
        expect(cancel.status === 'fulfilled' && cancel.value.data?.cancelOrder?.status).toBe('CANCELLED');
        expect(paidThenShip.status === 'rejected' || codeOf((paidThenShip as any).value) === 'INVALID_TRANSITION').toBe(true);
        expect(final.history.map((h: any) => h.to)).toEqual(['PENDING_PAYMENT', 'CANCELLED']);
      } else {
        expect(final.status).toBe('PROCESSING');
        expect(cancel.status === 'fulfilled' && codeOf(cancel.value)).toBe('INVALID_TRANSITION');
        expect(final.history.map((h: any) => h.to)).toEqual(['PENDING_PAYMENT', 'PAYING', 'PAID', 'PROCESSING']);
      }
    }
  });

  it('two concurrent cancels: one wins, the other INVALID_TRANSITION, stock released once', async () => {
    await t.gql(`mutation { createProduct(input: { sku: "DUO", name: "Duo", priceAmount: 100, stock: 100 }) { id } }`, {}, admin);
    const frank = t.token('frank');
    const { data } = await createOrder(frank, { items: [{ sku: 'DUO', quantity: 1 }] });
    const id = data.createOrder.id;
    const results = await Promise.all([
      t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id }, frank),
      t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id }, admin),
    ]);
    const outcomes = results.map((r) => r.data?.cancelOrder?.status ?? codeOf(r)).sort();
    expect(outcomes).toEqual(['CANCELLED', 'INVALID_TRANSITION']);
    const stock = (await t.gql(`{ products { sku stock } }`, {}, admin)).data.products.find((p: any) => p.sku === 'DUO').stock;
    expect(stock).toBe(100);
    const history = (await t.gql(`query($id: ID!) { order(id: $id) { history { to } } }`, { id }, admin)).data.order.history;
    expect(history).toHaveLength(2);
  });
});
