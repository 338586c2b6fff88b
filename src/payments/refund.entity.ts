import { Entity, Index, Property, Unique } from '@mikro-orm/core';
import { Field, ID, Int, ObjectType } from 'type-graphql';
import { BaseEntity } from '../shared/db/entity';
import { RefundStatus } from './payment-status';

/**
 * A refund of (part of) a payment. `refundNo` is the provider's refund number (`out_refund_no`, `out_request_no`, …):
 * saved before the provider is called and reused on every retry, so a timeout never refunds twice.
 */
@ObjectType()
@Entity({ tableName: 'refunds' })
@Unique({ properties: ['orderId', 'idempotencyKey'] })
@Index({ properties: ['status', 'nextQueryAt'] })
@Index({ properties: ['merchantId'] })
export class Refund extends BaseEntity<'status' | 'version' | 'attempts'> {
  @Field(() => ID)
  declare id: string;

  // Indexed by the unique (orderId, idempotencyKey), which every lookup by order uses.
  @Property({ type: 'uuid' })
  orderId!: string;

  @Field(() => ID)
  @Property({ type: 'uuid', index: true })
  paymentId!: string;

  @Field()
  @Property({ length: 64, unique: true })
  refundNo!: string;

  @Field(() => Int)
  @Property({ type: 'integer' })
  amount!: number;

  @Field(() => RefundStatus)
  @Property({ type: 'string', length: 12 })
  status: RefundStatus = RefundStatus.PENDING;

  @Field(() => String, { nullable: true })
  @Property({ length: 200, nullable: true })
  reason?: string | null;

  /** `admin:<id>` or `system` (automatic refunds of a duplicate or late payment). */
  @Property({ length: 100 })
  requestedBy!: string;

  @Property({ length: 128, nullable: true })
  idempotencyKey?: string | null;

  @Property({ length: 64, nullable: true })
  providerRefundId?: string | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'datetime', nullable: true })
  completedAt?: Date | null;

  @Property({ type: 'json', nullable: true })
  providerData?: Record<string, unknown> | null;

  @Property({ type: 'datetime', nullable: true })
  nextQueryAt?: Date | null;

  @Property({ type: 'integer' })
  attempts: number = 0;

  @Property({ version: true })
  version!: number;
}
