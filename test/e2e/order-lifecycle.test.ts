import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { codeOf, startTestApp, type Db, type TestApp } from '../helpers/app';
import { ADDRESS, ORDER_FIELDS, markPaidThroughMachine } from '../helpers/orders';

const databases: Db[] = inject('postgres') ? ['sqlite', 'postgresql'] : ['sqlite'];

describe.each(databases)('order lifecycle over HTTP on %s', (db) => {
  let t: TestApp;
  let admin: string;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    t = await startTestApp(db);
    admin = t.token('root', 'admin');
    alice = t.token('alice');
    bob = t.token('bob');
    const create = `mutation($input: CreateProductInput!) { createProduct(input: $input) { id sku stock } }`;
    for (const input of [
      { sku: 'TEA', name: 'Tea', priceAmount: 12800, stock: 10 },
      { sku: 'MUG', name: 'Mug', priceAmount: 4900, stock: 10 },
      { sku: 'OLD', name: 'Retired', priceAmount: 100, stock: 10, active: false },
    ]) {
      const res = await t.gql(create, { input }, admin);
      expect(res.errors).toBeUndefined();
    }
    const coupon = await t.gql(
      `mutation { createCoupon(input: { code: "TEN", kind: PERCENT, value: 10, minSpendAmount: 5000, usageLimit: 100 }) { code usedCount } }`,
      {},
      admin,
    );
    expect(coupon.data.createCoupon).toEqual({ code: 'TEN', usedCount: 0 });
  });
  afterAll(async () => t?.close());

  const createOrder = (token: string, input: Record<string, unknown>) =>
    t.gql(`mutation($input: CreateOrderInput!) { createOrder(input: $input) { ${ORDER_FIELDS} } }`, { input }, token);
  const stockOf = async (sku: string) =>
    (await t.gql(`{ products { sku stock } }`, {}, admin)).data.products.find((p: any) => p.sku === sku).stock;

  it('lists active products to everyone and all to admins; other operations need a token', async () => {
    const anon = await t.gql(`{ products { sku } }`);
    expect(anon.data.products.map((p: any) => p.sku).sort()).toEqual(['MUG', 'TEA']);
    const all = await t.gql(`{ products { sku active } }`, {}, admin);
    expect(all.data.products).toHaveLength(3);
    expect(codeOf(await t.gql(`{ orders { edges { cursor } } }`))).toBe('UNAUTHENTICATED');
    expect(codeOf(await t.gql(`{ previewOrder(input: { items: [{ sku: "TEA", quantity: 1 }] }) { totalAmount } }`))).toBe('UNAUTHENTICATED');
    expect(codeOf(await t.gql(`mutation { createProduct(input: { sku: "X", name: "X", priceAmount: 1, stock: 1 }) { id } }`, {}, alice))).toBe('FORBIDDEN');
  });

  it('rejects a bad token with UNAUTHENTICATED', async () => {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not-a-jwt' },
      body: JSON.stringify({ query: '{ products { sku } }' }),
    });
    expect(res.status).toBe(401);
    expect(codeOf(await res.json())).toBe('UNAUTHENTICATED');
  });

  it('previews the price without creating or reserving anything', async () => {
    const res = await t.gql(
      `query($input: OrderInput!) { previewOrder(input: $input) { items { sku unitPriceAmount lineTotalAmount } subtotalAmount discountAmount shippingAmount totalAmount couponCode } }`,
      { input: { items: [{ sku: 'TEA', quantity: 1 }], couponCode: 'TEN' } },
      alice,
    );
    expect(res.data.previewOrder).toEqual({
      items: [{ sku: 'TEA', unitPriceAmount: 12800, lineTotalAmount: 12800 }],
      subtotalAmount: 12800,
      discountAmount: 1280,
      shippingAmount: 0,
      totalAmount: 11520,
      couponCode: 'TEN',
    });
    expect(await stockOf('TEA')).toBe(10);
  });

  it('create → cancel: stock reserved, then released; history records who did what', async () => {
    const created = await createOrder(alice, { items: [{ sku: 'MUG', quantity: 3 }], shippingAddress: ADDRESS, note: 'ring twice' });
    expect(created.errors).toBeUndefined();
    const order = created.data.createOrder;
    expect(order).toMatchObject({
      status: 'PENDING_PAYMENT',
      customerId: 'alice',
      subtotalAmount: 14700,
      discountAmount: 0,
      shippingAmount: 0,
      totalAmount: 14700,
      paidAmount: 0,
      items: [{ sku: 'MUG', name: 'Mug', unitPriceAmount: 4900, quantity: 3, lineTotalAmount: 14700 }],
      shippingAddress: { ...ADDRESS, district: null, postalCode: null },
      note: 'ring twice',
    });
    expect(order.orderNo).toMatch(/^\d{22}$/);
    expect(new Date(order.expiresAt).getTime() - new Date(order.createdAt).getTime()).toBe(900_000);
    expect(await stockOf('MUG')).toBe(7);

    const cancelled = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id, reason: "changed my mind") { status history { from to actor reason } } }`, { id: order.id }, alice);
    expect(cancelled.data.cancelOrder).toEqual({
      status: 'CANCELLED',
      history: [
        { from: null, to: 'PENDING_PAYMENT', actor: 'customer:alice', reason: 'order created' },
        { from: 'PENDING_PAYMENT', to: 'CANCELLED', actor: 'customer:alice', reason: 'changed my mind' },
      ],
    });
    expect(await stockOf('MUG')).toBe(10);
    const again = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id: order.id }, alice);
    expect(codeOf(again)).toBe('INVALID_TRANSITION');
  });

  it('create → paid → ship → confirm → review', async () => {
    const created = await createOrder(alice, { items: [{ sku: 'TEA', quantity: 1 }], couponCode: 'TEN', shippingAddress: ADDRESS });
    const id = created.data.createOrder.id;
    expect(created.data.createOrder.totalAmount).toBe(11520);

    const early = await t.gql(`mutation($id: ID!) { shipOrder(orderId: $id, carrier: "SF", trackingNo: "SF1234567890") { status } }`, { id }, admin);
    expect(codeOf(early)).toBe('INVALID_TRANSITION');

    await markPaidThroughMachine(t.app, id);
    const custShip = await t.gql(`mutation($id: ID!) { shipOrder(orderId: $id, carrier: "SF", trackingNo: "SF1234567890") { status } }`, { id }, alice);
    expect(codeOf(custShip)).toBe('FORBIDDEN');
    const shipped = await t.gql(`mutation($id: ID!) { shipOrder(orderId: $id, carrier: "SF", trackingNo: "SF1234567890") { status shipment { carrier trackingNo shippedAt } } }`, { id }, admin);
    expect(shipped.data.shipOrder).toMatchObject({ status: 'PROCESSING', shipment: { carrier: 'SF', trackingNo: 'SF1234567890' } });

    const early2 = await t.gql(`mutation($id: ID!) { reviewOrder(orderId: $id, rating: 5) { status } }`, { id }, alice);
    expect(codeOf(early2)).toBe('INVALID_TRANSITION');
    const confirmed = await t.gql(`mutation($id: ID!) { confirmReceipt(orderId: $id) { status } }`, { id }, alice);
    expect(confirmed.data.confirmReceipt.status).toBe('COMPLETED');

    expect(codeOf(await t.gql(`mutation($id: ID!) { reviewOrder(orderId: $id, rating: 6) { status } }`, { id }, alice))).toBe('BAD_USER_INPUT');
    const reviewed = await t.gql(`mutation($id: ID!) { reviewOrder(orderId: $id, rating: 5, comment: "lovely") { review { rating comment } history { to actor } } }`, { id }, alice);
    expect(reviewed.data.reviewOrder.review).toEqual({ rating: 5, comment: 'lovely' });
    expect(reviewed.data.reviewOrder.history.map((h: any) => `${h.to} by ${h.actor}`)).toEqual([
      'PENDING_PAYMENT by customer:alice',
      'PAYING by system',
      'PAID by provider:test',
      'PROCESSING by admin:root',
      'COMPLETED by customer:alice',
    ]);
    expect(codeOf(await t.gql(`mutation($id: ID!) { reviewOrder(orderId: $id, rating: 4) { status } }`, { id }, alice))).toBe('INVALID_TRANSITION');
  });

  it("a customer never sees or changes another customer's order", async () => {
    const { data } = await createOrder(alice, { items: [{ sku: 'TEA', quantity: 1 }] });
    const { id, orderNo } = data.createOrder;
    expect((await t.gql(`query($id: ID!) { order(id: $id) { id } }`, { id }, bob)).data.order).toBeNull();
    expect((await t.gql(`query($no: String!) { orderByNo(orderNo: $no) { id } }`, { no: orderNo }, bob)).data.orderByNo).toBeNull();
    expect(codeOf(await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { id } }`, { id }, bob))).toBe('NOT_FOUND');
    expect((await t.gql(`{ orders { edges { node { id } } } }`, {}, bob)).data.orders.edges).toEqual([]);
    expect((await t.gql(`query($id: ID!) { order(id: $id) { id } }`, { id }, admin)).data.order.id).toBe(id);
    expect((await t.gql(`query($id: ID!) { order(id: $id) { id } }`, { id: 'no-such-id' }, alice)).data.order).toBeNull();
    expect(codeOf(await t.gql(`mutation { cancelOrder(orderId: "nope") { id } }`, {}, alice))).toBe('NOT_FOUND');
  });

  it('pages orders newest first with cursors and filters by status', async () => {
    const carol = t.token('carol');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createOrder(carol, { items: [{ sku: 'TEA', quantity: 1 }] })).data.createOrder.id);
    await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { id } }`, { id: ids[1] }, carol);
    const page = `query($after: String, $status: OrderStatus) { orders(first: 2, after: $after, status: $status) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`;
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const res: any = await t.gql(page, { after }, carol);
      seen.push(...res.data.orders.edges.map((e: any) => e.node.id));
      if (!res.data.orders.pageInfo.hasNextPage) break;
      after = res.data.orders.pageInfo.endCursor;
    }
    expect(seen).toEqual([...ids].reverse());
    const cancelled = await t.gql(page, { status: 'CANCELLED' }, carol);
    expect(cancelled.data.orders.edges.map((e: any) => e.node.id)).toEqual([ids[1]]);
    expect(codeOf(await t.gql(`{ orders(first: 1000) { edges { cursor } } }`, {}, carol))).toBe('BAD_USER_INPUT');
  });

  it('idempotency: a replay returns the first order, a different input conflicts, keys are per customer', async () => {
    const input = { items: [{ sku: 'TEA', quantity: 1 }], idempotencyKey: 'checkout-42' };
    const first = (await createOrder(alice, input)).data.createOrder;
    const replay = (await createOrder(alice, input)).data.createOrder;
    expect(replay.id).toBe(first.id);
    expect(replay.orderNo).toBe(first.orderNo);
    const conflict = await createOrder(alice, { ...input, items: [{ sku: 'TEA', quantity: 2 }] });
    expect(codeOf(conflict)).toBe('IDEMPOTENCY_CONFLICT');
    const bobs = (await createOrder(bob, input)).data.createOrder;
    expect(bobs.id).not.toBe(first.id);
    expect(bobs.customerId).toBe('bob');

    // A replay answers the first order even when the request could no longer be priced (the product was retired
    // since), and moves no stock.
    const mug = { items: [{ sku: 'MUG', quantity: 1 }], idempotencyKey: 'checkout-43' };
    const original = (await createOrder(alice, mug)).data.createOrder;
    const mugId = (await t.gql(`{ products { id sku } }`, {}, admin)).data.products.find((p: any) => p.sku === 'MUG').id;
    const retire = `mutation($id: ID!, $active: Boolean) { updateProduct(id: $id, input: { active: $active }) { active } }`;
    await t.gql(retire, { id: mugId, active: false }, admin);
    try {
      const stock = await stockOf('MUG');
      const again = await createOrder(alice, mug);
      expect(again.errors).toBeUndefined();
      expect(again.data.createOrder.id).toBe(original.id);
      expect(await stockOf('MUG')).toBe(stock);
    } finally {
      await t.gql(retire, { id: mugId, active: true }, admin);
    }
  });

  it('rejects bad input with a clear code and writes nothing', async () => {
    const before = await stockOf('TEA');
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ items: [{ sku: 'TEA', quantity: 0 }] }, 'BAD_USER_INPUT'],
      [{ items: [{ sku: 'TEA', quantity: 1000 }] }, 'BAD_USER_INPUT'],
      [{ items: [] }, 'BAD_USER_INPUT'],
      [{ items: Array.from({ length: 101 }, (_, i) => ({ sku: `S${i}`, quantity: 1 })) }, 'BAD_USER_INPUT'],
      [{ items: [{ sku: 'TEA', quantity: 1 }, { sku: 'TEA', quantity: 1 }] }, 'BAD_USER_INPUT'],
      [{ items: [{ sku: 'NOPE', quantity: 1 }] }, 'BAD_USER_INPUT'],
      [{ items: [{ sku: 'OLD', quantity: 1 }] }, 'BAD_USER_INPUT'],
      [{ items: [{ sku: 'TEA', quantity: 11 }] }, 'OUT_OF_STOCK'],
      [{ items: [{ sku: 'TEA', quantity: 1 }], couponCode: 'NOPE' }, 'COUPON_INVALID'],
      [{ items: [{ sku: 'MUG', quantity: 1 }], couponCode: 'TEN' }, 'COUPON_INVALID'],
      [{ items: [{ sku: 'TEA', quantity: 1 }], shippingAddress: { ...ADDRESS, phone: 'call me' } }, 'BAD_USER_INPUT'],
      [{ items: [{ sku: 'TEA', quantity: 1 }], note: 'x'.repeat(501) }, 'BAD_USER_INPUT'],
    ];
    for (const [input, code] of cases) {
      const res = await createOrder(alice, input);
      expect({ input, code: codeOf(res) }).toEqual({ input, code });
      expect(res.errors![0].message).toBeTruthy();
    }
    expect(await stockOf('TEA')).toBe(before);
  });

  it('restock adds and removes stock but never below zero', async () => {
    const products = (await t.gql(`{ products { id sku stock } }`, {}, admin)).data.products;
    const mug = products.find((p: any) => p.sku === 'MUG');
    const add = await t.gql(`mutation($id: ID!) { restockProduct(id: $id, quantity: 5) { stock } }`, { id: mug.id }, admin);
    expect(add.data.restockProduct.stock).toBe(mug.stock + 5);
    const tooMany = await t.gql(`mutation($id: ID!, $q: Int!) { restockProduct(id: $id, quantity: $q) { stock } }`, { id: mug.id, q: -(mug.stock + 6) }, admin);
    expect(codeOf(tooMany)).toBe('BAD_USER_INPUT');
    expect(await stockOf('MUG')).toBe(mug.stock + 5);
    const upd = await t.gql(`mutation($id: ID!) { updateProduct(id: $id, input: { priceAmount: 5000, active: true }) { priceAmount } }`, { id: mug.id }, admin);
    expect(upd.data.updateProduct.priceAmount).toBe(5000);
    expect(codeOf(await t.gql(`mutation { createProduct(input: { sku: "MUG", name: "dup", priceAmount: 1, stock: 1 }) { id } }`, {}, admin))).toBe('BAD_USER_INPUT');
  });

  it('answers malformed and abusive queries clearly', async () => {
    const parse = await t.gql(`{ products { sku `, {}, alice);
    expect(codeOf(parse)).toBe('GRAPHQL_PARSE_FAILED');
    const unknown = await t.gql(`{ nope }`, {}, alice);
    expect(codeOf(unknown)).toBe('GRAPHQL_VALIDATION_FAILED');
    const deep = `{ orders { edges { node { items { sku } history { to } } } } }`;
    expect((await t.gql(deep, {}, alice)).errors).toBeUndefined();
    const aliases = Array.from({ length: 1100 }, (_, i) => `a${i}: products { sku }`).join(' ');
    expect(codeOf(await t.gql(`{ ${aliases} }`, {}, alice))).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('serves health, readiness and metrics', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { database: 'ok' } });
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/graphql_requests_total\{operation="anonymous",type="mutation",outcome="ok"\} \d+/);
    expect(metrics).toMatch(/orders_created_total \d+/);
  });
});
