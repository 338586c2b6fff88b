import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/core';
import { Field, ID, ObjectType } from 'type-graphql';
import { newId } from '../shared/db/entity';

export type NotificationOutcome = 'applied' | 'duplicate' | 'rejected' | 'flagged';

/**
 * The inbox: one row per provider notification delivery, verified or not, written before anything is applied.
 * `appliedKey` (`provider:notificationId`) is unique and set only on the delivery that was applied, so a notification
 * is applied once however many copies arrive at once.
 */
@ObjectType()
@Entity({ tableName: 'payment_notifications' })
@Index({ properties: ['flagged', 'id'] })
export class PaymentNotification {
  @Field(() => ID)
  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  @Field()
  @Property({ length: 16 })
  provider!: string;

  @Field(() => String, { nullable: true })
  @Property({ length: 128, nullable: true })
  notificationId?: string | null;

  @Field(() => String, { nullable: true })
  @Property({ length: 64, nullable: true, index: true })
  paymentNo?: string | null;

  @Field(() => Date)
  @Property({ type: 'datetime' })
  receivedAt: Date = new Date();

  @Field(() => String, { description: 'applied, duplicate, rejected (verification failed) or flagged (verified, but ids or amount do not match)' })
  @Property({ type: 'string', length: 12 })
  outcome!: NotificationOutcome;

  @Field()
  @Property({ type: 'boolean' })
  flagged: boolean = false;

  @Field(() => String, { nullable: true })
  @Property({ length: 300, nullable: true })
  reason?: string | null;

  @Property({ length: 160, nullable: true, unique: true })
  appliedKey?: string | null;

  /** The raw body as received (for audit and replays) and the verified, decoded payload. */
  @Property({ type: 'text' })
  rawBody!: string;

  @Property({ type: 'json', nullable: true })
  payload?: unknown;
}
