import { Arg, ID, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { requireUser } from '../shared/auth';
import type { GraphQLContext } from '../shared/graphql/context';
import { PaymentStatusEvent, type PaymentStatusPayload } from './topics';

@Resolver()
export class SubscriptionResolver {
  /** The order's current state at once, then every change. Only the order's owner or an admin may subscribe. */
  @Subscription(() => PaymentStatusEvent, {
    subscribe: ({ args, context }: SubscribeResolverData<unknown, { orderId: string }, GraphQLContext>) =>
      context.services.realtime.orderStatus(requireUser(context.user), args.orderId),
  })
  paymentStatusChanged(
    @Arg('orderId', () => ID) _orderId: string,
    @Root() payload: PaymentStatusPayload,
  ): PaymentStatusEvent {
    return { ...payload, occurredAt: new Date(payload.occurredAt) };
  }
}
