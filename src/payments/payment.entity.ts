import { Entity, Index, Property } from '@mikro-orm/core';
import { Field, ID, Int, ObjectType } from 'type-graphql';
import { BaseEntity } from '../shared/db/entity';
import { PaymentChannel } from './channels';
import { PaymentStatus } from './payment-status';

/** What payOrder hands the checkout screen; kept so a repeated payOrder on the same channel answers the same QR. */
export interface PaymentSessionData {
  qrCodeUrl?: string;
  redirectUrl?: string;
  jsapiParams?: Record<string, string>;
  clientSecret?: string;
}

/**
 * One attempt to collect an order's money through one channel. `paymentNo` is the provider's merchant order number
 * (`out_trade_no`, …) and is saved before the provider is called, so a callback or a timeout can always be matched.
 * At most one payment of an order succeeds into it; a second success is refunded (README: "Keeping money consistent").
 */
@ObjectType()
@Entity({ tableName: 'payments' })
@Index({ properties: ['orderId', 'status'] })
@Index({ properties: ['status', 'nextQueryAt'] })
export class Payment extends BaseEntity<'status' | 'version' | 'attempts'> {
  @Field(() => ID)
  declare id: string;

  @Property({ type: 'uuid' })
  orderId!: string;

  @Field()
  @Property({ length: 32, unique: true })
  paymentNo!: string;

  @Field(() => PaymentChannel)
  @Property({ type: 'string', length: 20 })
  channel!: PaymentChannel;

  @Field(() => PaymentStatus)
  @Property({ type: 'string', length: 12 })
  status: PaymentStatus = PaymentStatus.PENDING;

  @Field(() => Int)
  @Property({ type: 'integer' })
  amount!: number;

  @Field()
  @Property({ length: 3 })
  currency!: string;

  @Field(() => String, { nullable: true })
  @Property({ length: 64, nullable: true })
  providerTransactionId?: string | null;

  /** The provider's own handle (prepay_id, PaymentIntent id, UnionPay txnTime) some later calls need. */
  @Property({ length: 128, nullable: true })
  providerReference?: string | null;

  /** Set once the provider accepted the creation; null while the create call is in flight or failed. */
  @Property({ type: 'json', nullable: true })
  session?: PaymentSessionData | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'datetime', nullable: true })
  expiresAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'datetime', nullable: true })
  paidAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'datetime', nullable: true })
  closedAt?: Date | null;

  /** Why a payment FAILED or was CLOSED (provider code or our reason). */
  @Property({ length: 200, nullable: true })
  failureReason?: string | null;

  /** The provider's raw answers (create, query, notification), kept for audit; never secrets. */
  @Property({ type: 'json', nullable: true })
  providerData?: Record<string, unknown> | null;

  /** Query fallback: when to ask the provider next while no result came, and how many times it was asked. */
  @Property({ type: 'datetime', nullable: true })
  nextQueryAt?: Date | null;

  @Property({ type: 'integer' })
  attempts: number = 0;

  @Property({ version: true })
  version!: number;
}
