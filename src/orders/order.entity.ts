import { Entity, Index, Property, Unique } from '@mikro-orm/core';
import { Field, ID, Int, ObjectType } from 'type-graphql';
import { BaseEntity } from '../shared/db/entity';
import { OrderStatus } from './status-machine';

/** A line of an order: a snapshot of the product's name and price when the order was priced. */
@ObjectType()
export class OrderItem {
  @Field() sku!: string;
  @Field() name!: string;
  @Field(() => Int) unitPriceAmount!: number;
  @Field(() => Int) quantity!: number;
  @Field(() => Int) lineTotalAmount!: number;
}

@ObjectType()
export class Address {
  @Field() name!: string;
  @Field() phone!: string;
  @Field() province!: string;
  @Field() city!: string;
  @Field(() => String, { nullable: true }) district?: string | null;
  @Field() line1!: string;
  @Field(() => String, { nullable: true }) postalCode?: string | null;
}

@ObjectType()
export class Shipment {
  @Field() carrier!: string;
  @Field() trackingNo!: string;
  @Field(() => Date) shippedAt!: Date;
}

@ObjectType()
export class Review {
  @Field(() => Int) rating!: number;
  @Field(() => String, { nullable: true }) comment?: string | null;
  @Field(() => Date) createdAt!: Date;
}

/**
 * The order: priced on the server, its status changed only by `status-machine.ts`.
 * Items, address, shipment and review are value objects stored as JSON on the row (read and written with the order,
 * never queried on their own). `version` is the optimistic lock every status change goes through.
 */
@ObjectType()
@Entity({ tableName: 'orders' })
@Unique({ properties: ['customerId', 'idempotencyKey'] })
@Index({ properties: ['customerId', 'id'] })
@Index({ properties: ['status', 'expiresAt'] })
export class Order extends BaseEntity<'status' | 'version' | 'paidAmount' | 'refundedAmount' | 'discountAmount'> {
  @Field(() => ID)
  declare id: string;

  @Field()
  @Property({ length: 32, unique: true })
  orderNo!: string;

  @Field(() => OrderStatus)
  @Property({ type: 'string', length: 20 })
  status: OrderStatus = OrderStatus.PENDING_PAYMENT;

  @Field()
  @Property({ length: 128 })
  customerId!: string;

  @Field(() => [OrderItem])
  @Property({ type: 'json' })
  items!: OrderItem[];

  @Field()
  @Property({ length: 3 })
  currency!: string;

  @Field(() => Int)
  @Property({ type: 'integer' })
  subtotalAmount!: number;

  @Field(() => Int)
  @Property({ type: 'integer' })
  discountAmount: number = 0;

  @Field(() => Int)
  @Property({ type: 'integer' })
  shippingAmount!: number;

  @Field(() => Int)
  @Property({ type: 'integer' })
  totalAmount!: number;

  /** The amount of the one payment that succeeded into this order. */
  @Field(() => Int)
  @Property({ type: 'integer' })
  paidAmount: number = 0;

  /** The one payment that succeeded into this order; refunds of it count toward `refundedAmount`. */
  @Property({ type: 'uuid', nullable: true })
  paidPaymentId?: string | null;

  /** The sum of SUCCEEDED refunds of the paid payment. */
  @Field(() => Int)
  @Property({ type: 'integer' })
  refundedAmount: number = 0;

  @Field(() => String, { nullable: true })
  @Property({ length: 64, nullable: true })
  couponCode?: string | null;

  @Property({ type: 'uuid', nullable: true })
  couponId?: string | null;

  @Field(() => Address, { nullable: true })
  @Property({ type: 'json', nullable: true })
  shippingAddress?: Address | null;

  @Field(() => Shipment, { nullable: true })
  @Property({ type: 'json', nullable: true })
  shipment?: Shipment | null;

  @Field(() => String, { nullable: true })
  @Property({ length: 500, nullable: true })
  note?: string | null;

  @Field(() => Review, { nullable: true })
  @Property({ type: 'json', nullable: true })
  review?: Review | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'datetime', nullable: true })
  expiresAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'datetime', nullable: true })
  paidAt?: Date | null;

  /** Per-customer idempotency key of createOrder and the hash of the input it was first used with. */
  @Property({ length: 128, nullable: true })
  idempotencyKey?: string | null;

  @Property({ length: 64, nullable: true })
  requestHash?: string | null;

  /** The payment-timeout sweeper's claim on this order (a lease, so a crashed instance's claim runs out). */
  @Property({ type: 'datetime', nullable: true })
  sweepLeaseUntil?: Date | null;

  @Property({ version: true })
  version!: number;
}
