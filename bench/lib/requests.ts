import { signToken } from '../../src/shared/auth';
import { SKUS } from './db';
import type { OpenLoopRequest } from './open-loop';
import { JWT_SECRET } from './targets';

/** The createOrder request every client sends (service and floor get the very same bytes). */
export const CREATE_ORDER = 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id orderNo status totalAmount } }';

export function customerTokens(count: number, prefix: string): string[] {
  return Array.from({ length: count }, (_, i) => signToken(JWT_SECRET, { id: `${prefix}${i}`, role: 'customer' }, '12h'));
}

export function adminToken(): string {
  return signToken(JWT_SECRET, { id: 'bench-admin', role: 'admin' }, '12h');
}

/** Request i: customer i mod tokens, a pseudo-random SKU of the 100, quantity 1, a unique idempotency key. */
export function createOrderRequest(tokens: string[], tag: string, i: number): OpenLoopRequest {
  const sku = SKUS[(i * 7919) % SKUS.length]!.sku;
  return {
    path: '/graphql',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[i % tokens.length]}` },
    body: JSON.stringify({ query: CREATE_ORDER, variables: { input: { items: [{ sku, quantity: 1 }], idempotencyKey: `${tag}-${i}` } } }),
    expect: createOrderOk,
  };
}

export const createOrderOk = (status: number, body: string): boolean => status === 200 && body.includes('"createOrder":{') && !body.includes('"errors"');
