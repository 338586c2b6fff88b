import { DateTimeResolver } from 'graphql-scalars';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchemaSync, type NonEmptyArray } from 'type-graphql';
import { CatalogResolver } from '../../catalog/catalog.resolver';
import { OrdersResolver } from '../../orders/orders.resolver';
import { PaymentSessionResolver, PaymentsResolver } from '../../payments/payments.resolver';
import { SubscriptionResolver } from '../../realtime/subscription.resolver';
import { ReconciliationResolver } from '../../reconciliation/reconciliation.resolver';

/** Every resolver of the API. The schema is generated from them; `schema.graphql` is its committed print. */
export const RESOLVERS: NonEmptyArray<Function> = [CatalogResolver, OrdersResolver, PaymentsResolver, PaymentSessionResolver, SubscriptionResolver, ReconciliationResolver];

let cached: GraphQLSchema | undefined;

export function buildAppSchema(): GraphQLSchema {
  cached ??= buildSchemaSync({
    resolvers: RESOLVERS,
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
    validate: { forbidUnknownValues: false },
    // Subscriptions here use `subscribe` functions (realtime/realtime.service.ts), never type-graphql topics.
    pubSub: {
      publish: () => {
        throw new Error('publish through the outbox, not type-graphql');
      },
      subscribe: () => {
        throw new Error('subscriptions use their own subscribe function');
      },
    },
  });
  return cached;
}

/** The SDL committed as `schema.graphql` (sorted, so the file diffs cleanly). */
export function printAppSchema(): string {
  return printSchema(lexicographicSortSchema(buildAppSchema())) + '\n';
}
