import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyToken } from '../../src/shared/auth';
import { TEST_JWT_SECRET, startTestApp, type TestApp } from '../helpers/app';

/** The service's own playground page (the GraphiQL wiring itself is covered in a browser by playground.test.ts). */
describe('the admins playground on the service', () => {
  let dev: TestApp;
  let prod: TestApp;
  beforeAll(async () => {
    dev = await startTestApp('sqlite');
    prod = await startTestApp('sqlite', { NODE_ENV: 'production', PAYMENT_SIMULATOR: 'off' });
  });
  afterAll(async () => {
    await dev?.close();
    await prod?.close();
  });

  const config = async (t: TestApp) => {
    const html = await (await fetch(`${t.url}/graphql`, { headers: { accept: 'text/html' } })).text();
    const json = /<script id="playground-config" type="application\/json">([\s\S]*?)<\/script>/.exec(html)![1]!;
    return JSON.parse(json.replace(/\\u003c/g, '<'));
  };

  it('in development: example operations and a working admin token pre-filled', async () => {
    const c = await config(dev);
    expect(c.defaultQuery).toContain('query Products');
    expect(c.defaultQuery).toContain('subscription Watch');
    const token = String(c.defaultHeaders.Authorization).replace(/^Bearer /, '');
    expect(verifyToken(TEST_JWT_SECRET, token)).toEqual({ id: 'admin', role: 'admin' });
    const res = await dev.gql(`{ paymentNotifications { edges { cursor } } }`, {}, token);
    expect(res.errors).toBeUndefined();
  });

  it('in production: no token in the page', async () => {
    const c = await config(prod);
    expect(c.defaultHeaders).toEqual({});
  });
});
