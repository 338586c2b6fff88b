import { Entity, Property, Unique } from '@mikro-orm/core';
import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { BaseEntity } from '../shared/db/entity';

export enum CouponKind {
  FIXED = 'FIXED',
  PERCENT = 'PERCENT',
}
registerEnumType(CouponKind, { name: 'CouponKind' });

@ObjectType()
@Entity({ tableName: 'coupons' })
@Unique({ properties: ['merchantId', 'code'] })
export class Coupon extends BaseEntity<'minSpendAmount' | 'usedCount' | 'startsAt' | 'endsAt' | 'usageLimit'> {
  @Field(() => ID)
  declare id: string;

  @Field()
  @Property({ length: 64 })
  code!: string;

  /** Stored as text (see README: MikroORM's SQLite CHECK round-trip bug for enums). */
  @Field(() => CouponKind)
  @Property({ type: 'string', length: 16 })
  kind!: CouponKind;

  /** FIXED: fen off the subtotal; PERCENT: percent off (1–100). */
  @Field(() => Int)
  @Property({ type: 'integer' })
  value!: number;

  @Field(() => Int)
  @Property({ type: 'integer' })
  minSpendAmount: number = 0;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'datetime', nullable: true })
  startsAt?: Date | null;

  @Field(() => Date, { nullable: true })
  @Property({ type: 'datetime', nullable: true })
  endsAt?: Date | null;

  @Field(() => Int, { nullable: true })
  @Property({ type: 'integer', nullable: true })
  usageLimit?: number | null;

  /** Orders holding this coupon; taken with a conditional update, given back when the order is cancelled. */
  @Field(() => Int)
  @Property({ type: 'integer' })
  usedCount: number = 0;
}
