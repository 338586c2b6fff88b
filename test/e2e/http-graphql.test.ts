import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';

/**
 * GraphQL over HTTP as browsers and SPAs see it. `POST /graphql` with a JSON body is answered in front of Express
 * (shared/graphql/http-entry.ts); every other request on /graphql goes through the Express route. Both must look the
 * same from outside.
 */
describe('GraphQL over HTTP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('sqlite', { RATE_LIMIT_PER_MINUTE: '2' });
    const admin = t.token('root', 'admin');
    const created = await t.gql(`mutation { createProduct(input: { sku: "CUP", name: "Cup", priceAmount: 900, stock: 5 }) { id } }`, {}, admin);
    expect(created.errors).toBeUndefined();
  });
  afterAll(async () => t?.close());

  const post = (body: string | Uint8Array, headers: Record<string, string> = {}) =>
    fetch(`${t.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body as BodyInit });
  const products = JSON.stringify({ query: '{ products { sku } }' });

  it('a JSON POST: the data, CORS headers for a browser, the caller\'s request id or a new one', async () => {
    const res = await post(products, { origin: 'https://shop.example', 'x-request-id': 'req-42' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toBe('x-request-id');
    expect(res.headers.get('x-request-id')).toBe('req-42');
    expect((await res.json()).data.products.length).toBeGreaterThan(0);
    const fresh = await post(products, { 'x-request-id': 'not a plain token!' });
    expect(fresh.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('the same answer through the Express route: a compressed body, a charset, GET, the preflight', async () => {
    const direct = await (await post(products)).json();
    const gzipped = await post(gzipSync(products), { 'content-encoding': 'gzip' });
    expect(gzipped.status).toBe(200);
    expect(await gzipped.json()).toEqual(direct);
    expect(await (await post(products, { 'content-type': 'application/json; charset=utf-8' })).json()).toEqual(direct);
    const get = await fetch(`${t.url}/graphql?query=${encodeURIComponent('{ products { sku } }')}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual(direct);
    const preflight = await fetch(`${t.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization,content-type');
  });

  it('bad bodies: 413 over 256 KB, 400 for what is not a JSON object, Apollo\'s 400 for a missing query', async () => {
    const big = JSON.stringify({ query: '{ products { sku } }', variables: { pad: 'x'.repeat(300 * 1024) } });
    expect((await post(big)).status).toBe(413);
    expect((await post(gzipSync(big), { 'content-encoding': 'gzip' })).status).toBe(413);
    const broken = await post('{"query": ');
    expect(broken.status).toBe(400);
    expect(await broken.json()).toEqual({ error: expect.any(String) });
    expect((await post('"just a string"')).status).toBe(400);
    expect((await post('')).status).toBe(400);
    expect((await post('{}')).status).toBe(400);
  });

  it('a bad token is 401 UNAUTHENTICATED', async () => {
    const res = await post(JSON.stringify({ query: '{ orders { edges { cursor } } }' }), { authorization: 'Bearer nope' });
    expect(res.status).toBe(401);
    expect(codeOf(await res.json())).toBe('UNAUTHENTICATED');
  });

  it('anonymous callers are limited per client address, taken from X-Forwarded-For behind a local proxy', async () => {
    const cancel = JSON.stringify({ query: 'mutation { cancelOrder(orderId: "00000000-0000-7000-8000-000000000000") { id } }' });
    const from = async (address: string) => codeOf(await (await post(cancel, { 'x-forwarded-for': address })).json());
    expect(await from('203.0.113.1')).toBe('UNAUTHENTICATED');
    expect(await from('203.0.113.1')).toBe('UNAUTHENTICATED');
    expect(await from('203.0.113.1')).toBe('RATE_LIMITED');
    expect(await from('203.0.113.2')).toBe('UNAUTHENTICATED');
  });
});
