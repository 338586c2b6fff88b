import { OptimisticLockError } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/knex';
import { registerEnumType } from 'type-graphql';
import { newId } from '../shared/db/entity';
import { readInt, type Sql } from '../shared/db/sql';
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
  assertTransition(from, to);
  order.status = to;
  order.updatedAt = at;
  const event = em.create(OrderEvent, { order, from, to, actor: by.actor, reason: by.reason ?? null, at });
  return event;
}

function assertTransition(from: OrderStatus, to: OrderStatus): void {
  if (!canTransition(from, to)) {
    throw new DomainError(ErrorCode.INVALID_TRANSITION, `An order cannot go from ${from} to ${to}`, { from, to });
  }
}

/** What `transitionRow` needs of an order read as a plain row; it updates `status` and `version` in place. */
export interface OrderRowState {
  id: string;
  status: OrderStatus;
  version: number;
}

/**
 * `transition` for the hot paths, which read orders as plain rows (no unit of work; see `shared/db/sql.ts`): the same
 * table decides, then one UPDATE changes the status (with `set`, other columns of the same change) and one INSERT
 * appends a history row per step. `path` may take more than one step (PENDING_PAYMENT → PAYING → PAID when a payment
 * succeeds before payOrder recorded PAYING).
 *
 * `guard: 'version'` (the default) updates only the version the order was read at: a concurrent change makes it miss
 * and fails the transaction with OptimisticLockError, as `transition` does, so the caller retries on fresh data (the
 * writes are queued with `Sql.later`, so the miss surfaces when the transaction's writes are sent). `guard:
 * 'status'` updates only while the order is still in the status it was read in, and answers false (nothing written)
 * otherwise: for steps that simply do not happen once the order has moved on.
 */
export async function transitionRow(
  sql: Sql,
  order: OrderRowState,
  path: readonly OrderStatus[],
  by: TransitionBy,
  set: Readonly<Record<string, unknown>> = {},
  at = new Date(),
  guard: 'version' | 'status' = 'version',
): Promise<boolean> {
  let from = order.status;
  const steps = path.map((to) => {
    assertTransition(from, to);
    const step = { from, to };
    from = to;
    return step;
  });
  const columns = Object.keys(set);
  const update = `update orders set status = ?, updated_at = ?, version = version + 1${columns.map((c) => `, ${c} = ?`).join('')}
     where id = ? and ${guard} = ?`;
  const params = [from, at, ...columns.map((c) => set[c]), order.id, guard === 'version' ? order.version : order.status];
  if (guard === 'version') {
    await sql.later(update, params, () => new OptimisticLockError(`order ${order.id} was changed concurrently`));
    order.version += 1;
  } else {
    const [updated] = await sql.rows<{ version: number }>(`${update} returning version`, params);
    if (!updated) return false;
    order.version = readInt(updated.version);
  }
  await sql.later(
    `insert into order_events (id, order_id, from_status, to_status, actor, reason, at) values ${steps.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
    steps.flatMap((s) => [newId(), order.id, s.from, s.to, by.actor, by.reason ?? null, at]),
  );
  order.status = from;
  return true;
}

/**
 * A status-guarded transition as SQL, for a hand-written PostgreSQL statement that changes the order and appends its
 * history row itself (the payment callback's one-statement path, `PaymentsService.applySuccessAtOnce`): the table
 * decides here too (an illegal pair throws when the text is built), and the status literals come from here.
 * `set` and `where` go into the order's UPDATE; `history` is the history row's `from_status, to_status` values.
 */
export function guardedTransitionSql(from: OrderStatus, to: OrderStatus): { set: string; where: string; history: string } {
  assertTransition(from, to);
  return { set: `status = '${to}'`, where: `status = '${from}'`, history: `'${from}', '${to}'` };
}

/** The first history row of a new order (`null` → its initial status), written with the order's insert. */
export async function recordCreation(sql: Sql, order: { id: string; status: OrderStatus }, by: TransitionBy, at: Date): Promise<void> {
  await sql.later('insert into order_events (id, order_id, from_status, to_status, actor, reason, at) values (?, ?, null, ?, ?, ?, ?)', [
    newId(),
    order.id,
    order.status,
    by.actor,
    by.reason ?? null,
    at,
  ]);
}
