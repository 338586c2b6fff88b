import { Entity, Property, Unique } from '@mikro-orm/core';
import { Field, ID, Int, ObjectType } from 'type-graphql';
import { BaseEntity } from '../shared/db/entity';

/**
 * One provider's day, reconciled: the bill's totals against the service's, how many rows matched, and (on
 * `Discrepancy` rows) what did not. One row per (merchant, provider, date): running the day again updates it, keeping
 * what admins decided about its discrepancies.
 *
 * `leaseUntil` is the claim a run holds while it works (a conditional update, so with many instances one run of a day
 * is in progress at a time). The row is written only once the bill was fetched and read: a refused bill leaves none.
 */
@ObjectType()
@Entity({ tableName: 'reconciliation_reports' })
@Unique({ properties: ['merchantId', 'provider', 'date'] })
export class ReconciliationReport extends BaseEntity<
  | 'matchedCount'
  | 'providerRowCount'
  | 'providerPaymentCount'
  | 'providerPaymentAmount'
  | 'providerRefundCount'
  | 'providerRefundAmount'
  | 'providerTotalAmount'
  | 'localPaymentCount'
  | 'localPaymentAmount'
  | 'localRefundCount'
  | 'localRefundAmount'
  | 'localTotalAmount'
  | 'totalsMatch'
  | 'runs'
> {
  @Field(() => ID)
  declare id: string;

  @Field({ description: 'wechatpay, alipay, unionpay or stripe' })
  @Property({ length: 16 })
  provider!: string;

  @Field({ description: 'The China calendar day (UTC+8), YYYY-MM-DD' })
  @Property({ length: 10 })
  date!: string;

  @Field(() => Int, { description: 'Bill rows that agree with a local payment or refund (state and amount)' })
  @Property({ type: 'integer' })
  matchedCount: number = 0;

  @Field(() => Int, { description: 'Rows in the provider bill' })
  @Property({ type: 'integer' })
  providerRowCount: number = 0;

  @Field(() => Int)
  @Property({ type: 'integer' })
  providerPaymentCount: number = 0;

  @Field(() => Int, { description: 'Collected that day according to the provider, minor units' })
  @Property({ type: 'integer' })
  providerPaymentAmount: number = 0;

  @Field(() => Int)
  @Property({ type: 'integer' })
  providerRefundCount: number = 0;

  @Field(() => Int, { description: 'Refunded that day according to the provider, minor units' })
  @Property({ type: 'integer' })
  providerRefundAmount: number = 0;

  @Field(() => Int, { description: 'providerPaymentAmount - providerRefundAmount' })
  @Property({ type: 'integer' })
  providerTotalAmount: number = 0;

  @Field(() => Int)
  @Property({ type: 'integer' })
  localPaymentCount: number = 0;

  @Field(() => Int, { description: 'Payments recorded here as succeeded that day (paidAt), minor units' })
  @Property({ type: 'integer' })
  localPaymentAmount: number = 0;

  @Field(() => Int)
  @Property({ type: 'integer' })
  localRefundCount: number = 0;

  @Field(() => Int, { description: 'Refunds recorded here as succeeded that day (completedAt), minor units' })
  @Property({ type: 'integer' })
  localRefundAmount: number = 0;

  @Field(() => Int, { description: 'localPaymentAmount - localRefundAmount' })
  @Property({ type: 'integer' })
  localTotalAmount: number = 0;

  @Field({ description: 'Both sides collected and refunded the same counts and amounts' })
  @Property({ type: 'boolean' })
  totalsMatch: boolean = false;

  @Field(() => Int, { description: 'How many times this day was reconciled' })
  @Property({ type: 'integer' })
  runs: number = 0;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'datetime', nullable: true })
  lastRunAt?: Date | null;

  @Field(() => String, { nullable: true, description: 'Who ran it last: admin:<id>, cli, schedule' })
  @Property({ length: 100, nullable: true })
  lastRunBy?: string | null;

  @Property({ type: 'datetime', nullable: true })
  leaseUntil?: Date | null;
}
