import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';

describe('mutation rate limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('sqlite', { RATE_LIMIT_PER_MINUTE: '3' });
  });
  afterAll(async () => t?.close());

  const cancel = (token?: string) => t.gql(`mutation { cancelOrder(orderId: "00000000-0000-7000-8000-000000000000") { id } }`, {}, token);

  it('limits each customer separately, anonymous callers per address, never admins; queries are not limited', async () => {
    const alice = t.token('alice');
    for (let i = 0; i < 3; i++) expect(codeOf(await cancel(alice))).toBe('NOT_FOUND');
    const limited = await cancel(alice);
    expect(codeOf(limited)).toBe('RATE_LIMITED');
    expect(limited.errors![0].extensions.retryAfterSeconds).toBeGreaterThan(0);
    expect(codeOf(await cancel(t.token('bob')))).toBe('NOT_FOUND');
    expect((await t.gql(`{ products { sku } }`, {}, alice)).errors).toBeUndefined();
    const admin = t.token('root', 'admin');
    for (let i = 0; i < 5; i++) expect(codeOf(await cancel(admin))).toBe('NOT_FOUND');
    for (let i = 0; i < 3; i++) expect(codeOf(await cancel())).toBe('UNAUTHENTICATED');
    expect(codeOf(await cancel())).toBe('RATE_LIMITED');
  });
});
