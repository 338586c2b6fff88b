import { Entity, Index, Property, Unique } from '@mikro-orm/core';
import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { BaseEntity } from '../shared/db/entity';
import { DiscrepancyKind } from './matcher';

registerEnumType(DiscrepancyKind, { name: 'DiscrepancyKind' });

/** open: found, nothing done yet; repaired: settled through the normal payment path; accepted: an admin's decision, with a note. */
export type DiscrepancyState = 'open' | 'repaired' | 'accepted';
export const DISCREPANCY_STATES: readonly DiscrepancyState[] = ['open', 'repaired', 'accepted'];

/**
 * One thing a provider's bill and the service disagree on, for one report (provider + day). `subject`
 * (`payment:<paymentNo>` / `refund:<refundNo>`) identifies it across runs of the same day, so a re-run updates it
 * instead of adding a copy, and never undoes an admin's `accepted`.
 */
@ObjectType()
@Entity({ tableName: 'reconciliation_discrepancies' })
@Unique({ properties: ['reportId', 'subject'] })
@Index({ properties: ['provider', 'date', 'id'] })
@Index({ properties: ['state', 'id'] })
@Index({ properties: ['merchantId'] })
export class Discrepancy extends BaseEntity<'state' | 'version'> {
  @Field(() => ID)
  declare id: string;

  @Field(() => ID)
  @Property({ type: 'uuid' })
  reportId!: string;

  @Field()
  @Property({ length: 16 })
  provider!: string;

  @Field({ description: 'The China calendar day of the report, YYYY-MM-DD' })
  @Property({ length: 10 })
  date!: string;

  @Property({ length: 100 })
  subject!: string;

  @Field(() => DiscrepancyKind)
  @Property({ type: 'string', length: 24 })
  kind!: DiscrepancyKind;

  @Field(() => String, { nullable: true })
  @Property({ length: 64, nullable: true })
  paymentNo?: string | null;

  @Field(() => String, { nullable: true })
  @Property({ length: 64, nullable: true })
  refundNo?: string | null;

  @Field(() => String, { nullable: true })
  @Property({ length: 64, nullable: true })
  providerTransactionId?: string | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  localAmount?: number | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  providerAmount?: number | null;

  @Field(() => String, { nullable: true, description: 'The local payment or refund status when found (PENDING, SUCCEEDED, …)' })
  @Property({ length: 16, nullable: true })
  localStatus?: string | null;

  @Field(() => String, { nullable: true, description: "The bill row's status as the provider wrote it" })
  @Property({ length: 40, nullable: true })
  providerStatus?: string | null;

  @Field(() => String, { description: 'open, repaired or accepted' })
  @Property({ type: 'string', length: 12 })
  state: DiscrepancyState = 'open';

  @Field(() => String, { nullable: true, description: 'What the repair found, or the admin note of an accepted discrepancy' })
  @Property({ length: 500, nullable: true })
  note?: string | null;

  @Field(() => String, { nullable: true, description: 'reconciliation (repaired) or admin:<id> (accepted)' })
  @Property({ length: 100, nullable: true })
  resolvedBy?: string | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'datetime', nullable: true })
  resolvedAt?: Date | null;

  @Property({ version: true })
  version!: number;
}
