import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/core';
import { Field, ObjectType } from 'type-graphql';
import { newId } from '../shared/db/entity';
import type { Order } from './order.entity';
import { OrderStatus } from './status-machine';

/** One row of an order's history: who changed its status, from what, to what, when and why. Append-only. */
@ObjectType()
@Entity({ tableName: 'order_events' })
@Index({ properties: ['order', 'at'] })
export class OrderEvent {
  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  // index: false — the (order, at) index serves every lookup by order; SQLite would otherwise add one on order alone.
  @ManyToOne('Order', { deleteRule: 'cascade', index: false })
  order!: Order;

  @Field(() => OrderStatus, { nullable: true })
  @Property({ type: 'string', length: 20, nullable: true, fieldName: 'from_status' })
  from?: OrderStatus | null;

  @Field(() => OrderStatus)
  @Property({ type: 'string', length: 20, fieldName: 'to_status' })
  to!: OrderStatus;

  @Field()
  @Property({ length: 100 })
  actor!: string;

  @Field(() => String, { nullable: true })
  @Property({ length: 500, nullable: true })
  reason?: string | null;

  @Field(() => Date)
  @Property({ type: 'datetime' })
  at: Date = new Date();
}
