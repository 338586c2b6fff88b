import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { requireAdmin, requireUser } from '../shared/auth';
import { badInput } from '../shared/errors';
import type { GraphQLContext } from '../shared/graphql/context';
import { connection, decodeCursor } from '../shared/graphql/pagination';
import { OrderEvent } from './order-event.entity';
import { Order } from './order.entity';
import { CreateOrderInput, OrderConnection, OrderInput, OrderQuote } from './orders.inputs';
import { OrderStatus } from './status-machine';

@Resolver(() => Order)
export class OrdersResolver {
  /** The confirmation step: prices an order without creating it. */
  @Query(() => OrderQuote)
  previewOrder(@Arg('input') input: OrderInput, @Ctx() ctx: GraphQLContext): Promise<OrderQuote> {
    return ctx.services.orders.preview(requireUser(ctx.user), input);
  }

  @Query(() => Order, { nullable: true })
  order(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Order | null> {
    return ctx.services.orders.find(requireUser(ctx.user), { id });
  }

  @Query(() => Order, { nullable: true })
  orderByNo(@Arg('orderNo') orderNo: string, @Ctx() ctx: GraphQLContext): Promise<Order | null> {
    if (orderNo.length > 64) return Promise.resolve(null);
    return ctx.services.orders.find(requireUser(ctx.user), { orderNo });
  }

  /** Newest first. Customers: their own orders; admins: all. */
  @Query(() => OrderConnection)
  async orders(
    @Ctx() ctx: GraphQLContext,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
    @Arg('status', () => OrderStatus, { nullable: true }) status?: OrderStatus,
  ): Promise<OrderConnection> {
    const user = requireUser(ctx.user);
    if (after !== undefined && after !== null && after.length > 200) throw badInput('after is not a cursor of this list');
    const page = await ctx.services.orders.list(user, first ?? 20, after ? decodeCursor(after) : null, status ?? null);
    return connection(page.orders, page.hasNextPage);
  }

  @Mutation(() => Order)
  createOrder(@Arg('input') input: CreateOrderInput, @Ctx() ctx: GraphQLContext): Promise<Order> {
    return ctx.services.orders.create(requireUser(ctx.user), input);
  }

  @Mutation(() => Order)
  cancelOrder(
    @Arg('orderId', () => ID) orderId: string,
    @Arg('reason', () => String, { nullable: true }) reason: string | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Order> {
    if (reason && reason.length > 500) throw badInput('reason may have at most 500 characters');
    return ctx.services.orders.cancel(requireUser(ctx.user), orderId, reason);
  }

  @Mutation(() => Order)
  confirmReceipt(@Arg('orderId', () => ID) orderId: string, @Ctx() ctx: GraphQLContext): Promise<Order> {
    return ctx.services.orders.confirmReceipt(requireUser(ctx.user), orderId);
  }

  @Mutation(() => Order)
  reviewOrder(
    @Arg('orderId', () => ID) orderId: string,
    @Arg('rating', () => Int) rating: number,
    @Arg('comment', () => String, { nullable: true }) comment: string | null,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Order> {
    if (comment && comment.length > 1000) throw badInput('comment may have at most 1000 characters');
    return ctx.services.orders.review(requireUser(ctx.user), orderId, rating, comment);
  }

  @Mutation(() => Order)
  shipOrder(
    @Arg('orderId', () => ID) orderId: string,
    @Arg('carrier') carrier: string,
    @Arg('trackingNo') trackingNo: string,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Order> {
    const admin = requireAdmin(ctx.user);
    if (!carrier.trim() || carrier.length > 50) throw badInput('carrier must have 1–50 characters');
    if (!/^[A-Za-z0-9-]{4,40}$/.test(trackingNo)) throw badInput('trackingNo must be 4–40 letters, digits or -');
    return ctx.services.orders.ship(admin, orderId, carrier.trim(), trackingNo);
  }

  @FieldResolver(() => [OrderEvent])
  history(@Root() order: Order, @Ctx() ctx: GraphQLContext): Promise<OrderEvent[]> {
    return ctx.loaders.history.load(order.id);
  }
}
