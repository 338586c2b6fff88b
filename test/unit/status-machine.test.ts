import { describe, expect, it } from 'vitest';
import { OrderStatus, TRANSITIONS, canTransition, transition } from '../../src/orders/status-machine';
import { DomainError } from '../../src/shared/errors';
import type { Order } from '../../src/orders/order.entity';
import type { EntityManager } from '@mikro-orm/knex';

const ALL = Object.values(OrderStatus);
const LEGAL: Array<[OrderStatus, OrderStatus]> = [
  ['PENDING_PAYMENT', 'PAYING'],
  ['PENDING_PAYMENT', 'CANCELLED'],
  ['PAYING', 'PAID'],
  ['PAYING', 'CANCELLED'],
  ['PAID', 'PROCESSING'],
  ['PAID', 'REFUNDED'],
  ['PROCESSING', 'COMPLETED'],
  ['PROCESSING', 'REFUNDED'],
  ['COMPLETED', 'REFUNDED'],
] as Array<[OrderStatus, OrderStatus]>;
const isLegal = (from: OrderStatus, to: OrderStatus) => LEGAL.some(([f, t]) => f === from && t === to);

/** A stand-in EntityManager that records what the machine creates (the machine itself does no I/O). */
function fakeEm() {
  const created: any[] = [];
  const em = { create: (_cls: unknown, data: any) => (created.push(data), data) } as unknown as EntityManager;
  return { em, created };
}

describe('order status machine', () => {
  const pairs = ALL.flatMap((from) => ALL.map((to) => [from, to] as const));

  it.each(pairs.filter(([f, t]) => isLegal(f, t)))('%s → %s is legal and appends history', (from, to) => {
    const { em, created } = fakeEm();
    const order = { status: from, updatedAt: new Date(0) } as Order;
    transition(em, order, to, { actor: 'admin:root', reason: 'because' });
    expect(order.status).toBe(to);
    expect(created).toEqual([expect.objectContaining({ order, from, to, actor: 'admin:root', reason: 'because' })]);
  });

  it.each(pairs.filter(([f, t]) => !isLegal(f, t)))('%s → %s is INVALID_TRANSITION and changes nothing', (from, to) => {
    const { em, created } = fakeEm();
    const order = { status: from, updatedAt: new Date(0) } as Order;
    let error: unknown;
    try {
      transition(em, order, to, { actor: 'system' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).code).toBe('INVALID_TRANSITION');
    expect(order.status).toBe(from);
    expect(order.updatedAt).toEqual(new Date(0));
    expect(created).toHaveLength(0);
  });

  it('the table is exactly the documented transitions', () => {
    const fromTable = ALL.flatMap((f) => TRANSITIONS[f].map((t) => [f, t]));
    expect(fromTable.sort()).toEqual([...LEGAL].sort());
    expect(canTransition(OrderStatus.CANCELLED, OrderStatus.PAID)).toBe(false);
  });
});
