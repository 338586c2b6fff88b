import type { EntityManager } from '@mikro-orm/knex';
import { registerEnumType } from 'type-graphql';
import { DomainError, ErrorCode } from '../shared/errors';
import { OrderEvent } from './order-event.entity';
import type { Order } from './order.entity';

export enum OrderStatus {
  PENDING_PAYMENT = 'PENDING_PAYMENT',
  PAYING = 'PAYING',
  PAID = 'PAID',
  PROCESSING = 'PROCESSING',
  COMPLETED = 'COMPLETED',
  CANCELLED = 'CANCELLED',
  REFUNDED = 'REFUNDED',
}
registerEnumType(OrderStatus, { name: 'OrderStatus' });

/**
 * Every legal order status change, as data. Anything not listed is INVALID_TRANSITION.
 *
 * - PENDING_PAYMENT → PAYING: payOrder started a payment at a provider.
 * - PENDING_PAYMENT | PAYING → CANCELLED: the customer cancelled, or the payment timeout swept it
 *   (a PAYING order is closed at the provider first).
 * - PAYING → PAID: a verified provider success for the order's live payment.
 * - PAID → PROCESSING: an admin shipped it. PROCESSING → COMPLETED: the customer confirmed receipt.
 * - PAID | PROCESSING | COMPLETED → REFUNDED: refunds reached the paid amount.
 * CANCELLED and REFUNDED are final. No transition goes backwards.
 */
export const TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  PENDING_PAYMENT: [OrderStatus.PAYING, OrderStatus.CANCELLED],
  PAYING: [OrderStatus.PAID, OrderStatus.CANCELLED],
  PAID: [OrderStatus.PROCESSING, OrderStatus.REFUNDED],
  PROCESSING: [OrderStatus.COMPLETED, OrderStatus.REFUNDED],
  COMPLETED: [OrderStatus.REFUNDED],
  CANCELLED: [],
  REFUNDED: [],
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export interface TransitionBy {
  /** `customer:<id>`, `admin:<id>`, `system`, or `provider:<name>`. */
  actor: string;
  reason?: string | null;
}

/**
 * The only code that writes `order.status`. Checks the table, changes the status and appends the history row in the
 * caller's unit of work; the order's version column makes a concurrent change of the same order fail at flush
 * (OptimisticLockError), so two racing transitions can never both win.
 */
export function transition(em: EntityManager, order: Order, to: OrderStatus, by: TransitionBy, at = new Date()): OrderEvent {
  const from = order.status;
  if (!canTransition(from, to)) {
    throw new DomainError(ErrorCode.INVALID_TRANSITION, `An order cannot go from ${from} to ${to}`, { from, to });
  }
  order.status = to;
  order.updatedAt = at;
  const event = em.create(OrderEvent, { order, from, to, actor: by.actor, reason: by.reason ?? null, at });
  return event;
}
