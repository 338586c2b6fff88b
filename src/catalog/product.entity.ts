import { Entity, Property, Unique } from '@mikro-orm/core';
import { Field, ID, Int, ObjectType } from 'type-graphql';
import { BaseEntity } from '../shared/db/entity';

@ObjectType()
@Entity({ tableName: 'products' })
@Unique({ properties: ['merchantId', 'sku'] })
export class Product extends BaseEntity<'active' | 'currency'> {
  @Field(() => ID)
  declare id: string;

  @Field()
  @Property({ length: 64 })
  sku!: string;

  @Field()
  @Property({ length: 200 })
  name!: string;

  /** Unit price in minor units. */
  @Field(() => Int)
  @Property({ type: 'integer' })
  priceAmount!: number;

  @Field()
  @Property({ length: 3 })
  currency: string = 'CNY';

  /** Units available to sell; reserved by createOrder with a conditional update, never below zero. */
  @Field(() => Int)
  @Property({ type: 'integer' })
  stock!: number;

  @Field()
  @Property({ type: 'boolean' })
  active: boolean = true;
}
