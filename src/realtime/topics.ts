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
