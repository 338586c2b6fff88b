import { OptionalProps, PrimaryKey, Property } from '@mikro-orm/core';
import { Field, ObjectType } from 'type-graphql';
import { v7 as uuidv7 } from 'uuid';

/** The merchant every row belongs to until multi-merchant mode lands (see README, "Merchants"). */
export const DEFAULT_MERCHANT_ID = 'default';

/** Time-ordered ids (UUIDv7): primary keys double as stable, sortable pagination cursors. */
export const newId = (): string => uuidv7();

/** Id, merchant and timestamps shared by the business entities. */
@ObjectType() // not emitted: only types the resolvers reach are in the schema
export abstract class BaseEntity<Optional extends string = never> {
  [OptionalProps]?: 'id' | 'merchantId' | 'createdAt' | 'updatedAt' | Optional;

  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  @Property({ length: 64, index: true })
  merchantId: string = DEFAULT_MERCHANT_ID;

  @Field(() => Date)
  @Property({ type: 'datetime' })
  createdAt: Date = new Date();

  @Field(() => Date)
  @Property({ type: 'datetime', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
