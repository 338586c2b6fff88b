import { OptionalProps, PrimaryKey, Property } from '@mikro-orm/core';
import { Field, ObjectType } from 'type-graphql';
import { v7 as uuidv7 } from 'uuid';

/** The merchant every row belongs to until multi-merchant mode lands (see README, "Merchants"). */
export const DEFAULT_MERCHANT_ID = 'default';

/** Time-ordered ids (UUIDv7): primary keys double as stable, sortable pagination cursors. */
export const newId = (): string => uuidv7();

/** Whether a client-supplied id can be an id at all (PostgreSQL rejects malformed uuids with an error, not a miss). */
export const isId = (id: string): boolean => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);

/** Id, merchant and timestamps shared by the business entities. */
@ObjectType() // not emitted: only types the resolvers reach are in the schema
export abstract class BaseEntity<Optional extends string = never> {
  [OptionalProps]?: 'id' | 'merchantId' | 'createdAt' | 'updatedAt' | Optional;

  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  // No index of its own: a table queried by merchant indexes it with what it is queried by (e.g. products'
  // unique (merchant_id, sku)); a lone merchant_id index is only a write on every insert and status change.
  @Property({ length: 64 })
  merchantId: string = DEFAULT_MERCHANT_ID;

  @Field(() => Date)
  @Property({ type: 'datetime' })
  createdAt: Date = new Date();

  @Field(() => Date)
  @Property({ type: 'datetime', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
