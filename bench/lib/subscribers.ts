import { signToken } from '../../src/shared/auth';
import { insertPayingOrders, newId, orderNo, paymentNo, type BenchDb, type PayingOrder } from './db';
import type { SocketSpec } from './swarm';
import { JWT_SECRET } from './targets';

/**
 * Orders for held subscriptions. The swarm's idle subscriptions are on real PAYING orders written with the plain
 * driver: order i belongs to customer `sw-<i / perSocket>`, and socket k is that customer's checkout screen holding
 * `perSocket` subscriptions (graphql-ws multiplexes them), authenticated with the customer's own token, so the
 * service runs its ordinary owner check for every subscription.
 */
export interface SwarmOrders {
  orders: PayingOrder[];
  perSocket: number;
  tokens: Map<string, string>;
}

export function swarmOrders(count: number, perSocket: number, seqOffset = 5_000_000): SwarmOrders {
  const now = new Date();
  const orders: PayingOrder[] = [];
  for (let i = 0; i < count; i++) {
    orders.push({
      orderId: newId(),
      orderNo: orderNo(seqOffset + i, now),
      customerId: `sw-${Math.floor(i / perSocket)}`,
      paymentId: newId(),
      paymentNo: paymentNo(seqOffset + i, now),
      amount: 990,
    });
  }
  const tokens = new Map<string, string>();
  for (const o of orders) if (!tokens.has(o.customerId)) tokens.set(o.customerId, signToken(JWT_SECRET, { id: o.customerId, role: 'customer' }, '12h'));
  return { orders, perSocket, tokens };
}

/** Socket specs for the swarm's orders [from, to). */
export function socketSpecs(s: SwarmOrders, from: number, to: number): SocketSpec[] {
  const specs: SocketSpec[] = [];
  for (let i = from; i < to; i += s.perSocket) {
    const chunk = s.orders.slice(i, Math.min(to, i + s.perSocket));
    specs.push({ token: s.tokens.get(chunk[0]!.customerId)!, orderIds: chunk.map((o) => o.orderId) });
  }
  return specs;
}

/** The same orders with fresh ids (floor and service databases never share order ids, so never Redis topics). */
export function withFreshIds(orders: PayingOrder[]): PayingOrder[] {
  return orders.map((o) => ({ ...o, orderId: newId(), paymentId: newId() }));
}

export async function insertSwarm(db: BenchDb, s: SwarmOrders): Promise<SwarmOrders> {
  const fresh = { ...s, orders: withFreshIds(s.orders) };
  await insertPayingOrders(db, fresh.orders);
  return fresh;
}

/** Probe orders: PAYING orders of customer `probe`, the "checkout screen" whose latency is measured. */
export function probeOrders(count: number, seqOffset: number, customer = 'probe'): PayingOrder[] {
  const now = new Date();
  return Array.from({ length: count }, (_, i) => ({
    orderId: newId(),
    orderNo: orderNo(seqOffset + i, now),
    customerId: customer,
    paymentId: newId(),
    paymentNo: paymentNo(seqOffset + i, now),
    amount: 1000 + (i % 100),
  }));
}

export function tokenFor(customerId: string, role: 'customer' | 'admin' = 'customer'): string {
  return signToken(JWT_SECRET, { id: customerId, role }, '12h');
}
