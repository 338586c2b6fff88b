import { Field, ID, Int, ObjectType } from 'type-graphql';
import { OrderStatus } from '../orders/status-machine';
import { PaymentChannel } from '../payments/channels';
import { PaymentStatus } from '../payments/payment-status';

/**
 * The one realtime topic: an order's payment status. Routed per order (`order:<id>`), so a publish reaches only the
 * instances and sockets subscribed to that order (never a filter loop over every event).
 * The payload is plain JSON (dates as ISO strings) so it survives the Redis hop unchanged.
 */
export const orderTopic = (orderId: string): string => `order:${orderId}`;

export interface PaymentStatusPayload {
  orderId: string;
  orderNo: string;
  orderStatus: OrderStatus;
  paymentId: string | null;
  paymentNo: string | null;
  paymentStatus: PaymentStatus | null;
  channel: PaymentChannel | null;
  totalAmount: number;
  paidAmount: number;
  refundedAmount: number;
  occurredAt: string;
  /** The order's version when the event was made: a subscriber drops events older than what it already sent. */
  version: number;
}

@ObjectType()
export class PaymentStatusEvent {
  @Field(() => ID) orderId!: string;
  @Field() orderNo!: string;
  @Field(() => OrderStatus) orderStatus!: OrderStatus;
  @Field(() => ID, { nullable: true }) paymentId?: string | null;
  @Field(() => String, { nullable: true }) paymentNo?: string | null;
  @Field(() => PaymentStatus, { nullable: true }) paymentStatus?: PaymentStatus | null;
  @Field(() => PaymentChannel, { nullable: true }) channel?: PaymentChannel | null;
  @Field(() => Int) totalAmount!: number;
  @Field(() => Int) paidAmount!: number;
  @Field(() => Int) refundedAmount!: number;
  @Field(() => Date) occurredAt!: Date;
}

/** The event for an order's current state, optionally with the payment that caused it. */
export function statusPayload(
  order: {
    id: string;
    orderNo: string;
    status: OrderStatus;
    totalAmount: number;
    paidAmount: number;
    refundedAmount: number;
    version: number;
  },
  payment: { id: string; paymentNo: string; status: PaymentStatus; channel: PaymentChannel } | null,
  occurredAt = new Date(),
): PaymentStatusPayload {
  return {
    orderId: order.id,
    orderNo: order.orderNo,
    orderStatus: order.status,
    paymentId: payment?.id ?? null,
    paymentNo: payment?.paymentNo ?? null,
    paymentStatus: payment?.status ?? null,
    channel: payment?.channel ?? null,
    totalAmount: order.totalAmount,
    paidAmount: order.paidAmount,
    refundedAmount: order.refundedAmount,
    occurredAt: occurredAt.toISOString(),
    version: order.version,
  };
}

/**
 * `statusPayload` built by PostgreSQL, for a statement that changes an order and writes its event's outbox row
 * itself (`PaymentsService.applySuccessAtOnce`). `row` names a row with the order's columns after the change
 * (`id`, `order_no`, `status`, `total_amount`, `paid_amount`, `refunded_amount`, `version`) and the payment's
 * (`payment_id`, `payment_no`, `payment_status`, `channel`); `occurredAt` is the one parameter (an ISO string).
 * Keep it in step with `statusPayload`: a test compares the two (test/e2e/wechatpay-payment.test.ts, "stored in the outbox exactly as it is published").
 */
export function statusPayloadSql(row: string): string {
  return `jsonb_build_object('orderId', ${row}.id, 'orderNo', ${row}.order_no, 'orderStatus', ${row}.status,
    'paymentId', ${row}.payment_id, 'paymentNo', ${row}.payment_no, 'paymentStatus', ${row}.payment_status,
    'channel', ${row}.channel, 'totalAmount', ${row}.total_amount, 'paidAmount', ${row}.paid_amount,
    'refundedAmount', ${row}.refunded_amount, 'occurredAt', ?::text, 'version', ${row}.version)`;
}

/** SQL for `orderTopic` of an order id column. */
export const orderTopicSql = (idColumn: string): string => `'order:' || ${idColumn}`;
