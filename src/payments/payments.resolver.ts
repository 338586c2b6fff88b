import { IsInt, IsIP, IsOptional, IsUrl, Length, Min } from 'class-validator';
import QRCode from 'qrcode';
import { Arg, Ctx, Field, FieldResolver, ID, InputType, Int, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { PaymentNotification } from '../callbacks/notification.entity';
import { Order } from '../orders/order.entity';
import { requireAdmin, requireUser } from '../shared/auth';
import { badInput } from '../shared/errors';
import type { GraphQLContext } from '../shared/graphql/context';
import { PageInfo, connection, decodeCursor } from '../shared/graphql/pagination';
import { PaymentChannel } from './channels';
import { Payment } from './payment.entity';
import { Refund } from './refund.entity';

@InputType()
export class PayOrderInput {
  @Field(() => ID) orderId!: string;
  @Field(() => PaymentChannel) channel!: PaymentChannel;
  @Field(() => String, { nullable: true }) @IsOptional() @Length(1, 128) openid?: string | null;
  @Field(() => String, { nullable: true }) @IsOptional() @IsIP() clientIp?: string | null;
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, 500)
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  returnUrl?: string | null;
}

@InputType()
export class RefundOrderInput {
  @Field(() => ID) orderId!: string;
  @Field(() => Int, { nullable: true, description: 'Minor units; default: all that is left to refund' })
  @IsOptional()
  @IsInt()
  @Min(1)
  amount?: number | null;
  @Field(() => String, { nullable: true }) @IsOptional() @Length(1, 80) reason?: string | null;
  @Field(() => String, { nullable: true }) @IsOptional() @Length(1, 128) idempotencyKey?: string | null;
}

@ObjectType()
export class PaymentSession {
  @Field(() => Payment) payment!: Payment;
  @Field(() => String, { nullable: true, description: "The provider's code_url / qr_code, to encode in a QR" }) qrCodeUrl?: string | null;
  @Field(() => String, { nullable: true, description: 'H5 / page / WAP / gateway: where the browser goes' }) redirectUrl?: string | null;
  @Field(() => String, { nullable: true, description: 'JSON for wx.requestPayment (WECHAT_JSAPI)' }) jsapiParams?: string | null;
  @Field(() => String, { nullable: true, description: 'STRIPE_CARD' }) clientSecret?: string | null;
}

/** `qrCodeImage` is drawn only when a client selects it: a 256 px PNG costs about 4 ms of CPU on the event loop. */
@Resolver(() => PaymentSession)
export class PaymentSessionResolver {
  @FieldResolver(() => String, { nullable: true, description: 'The same as a data: URL image, ready for <img src>' })
  async qrCodeImage(@Root() session: PaymentSession): Promise<string | null> {
    return session.qrCodeUrl ? QRCode.toDataURL(session.qrCodeUrl, { errorCorrectionLevel: 'M', margin: 2, width: 256 }) : null;
  }
}

@ObjectType()
export class PaymentNotificationEdge {
  @Field() cursor!: string;
  @Field(() => PaymentNotification) node!: PaymentNotification;
}

@ObjectType()
export class PaymentNotificationConnection {
  @Field(() => [PaymentNotificationEdge]) edges!: PaymentNotificationEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@Resolver(() => Order)
export class PaymentsResolver {
  /** Starts (or resumes) paying an order through a channel; the owner only. */
  @Mutation(() => PaymentSession)
  async payOrder(@Arg('input') input: PayOrderInput, @Ctx() ctx: GraphQLContext): Promise<PaymentSession> {
    const s = await ctx.services.payments.pay(requireUser(ctx.user), input);
    return { ...s, jsapiParams: s.jsapiParams ? JSON.stringify(s.jsapiParams) : null };
  }

  /** Admin: asks the provider about a payment now and applies the answer. */
  @Mutation(() => Payment)
  syncPayment(@Arg('paymentId', () => ID) paymentId: string, @Ctx() ctx: GraphQLContext): Promise<Payment> {
    const admin = requireAdmin(ctx.user);
    return ctx.services.payments.syncPayment(paymentId, `admin:${admin.id}`);
  }

  /**
   * Admin: refunds the order's paid payment, fully (default) or partly. A refund the provider has not confirmed yet
   * answers PENDING and is followed up; PAYMENT_PROVIDER_ERROR only when the provider refused it outright.
   */
  @Mutation(() => Refund)
  refundOrder(@Arg('input') input: RefundOrderInput, @Ctx() ctx: GraphQLContext): Promise<Refund> {
    return ctx.services.payments.refundOrder(requireAdmin(ctx.user), input);
  }

  /** Admin: every provider notification received, newest first; `flagged: true` for the ones to look at. */
  @Query(() => PaymentNotificationConnection)
  async paymentNotifications(
    @Ctx() ctx: GraphQLContext,
    @Arg('flagged', () => Boolean, { nullable: true }) flagged?: boolean,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
  ): Promise<PaymentNotificationConnection> {
    requireAdmin(ctx.user);
    const limit = first ?? 20;
    if (limit < 1 || limit > 100) throw badInput('first must be between 1 and 100');
    const where: Record<string, unknown> = {};
    if (flagged !== undefined && flagged !== null) where.flagged = flagged;
    if (after) where.id = { $lt: decodeCursor(after) };
    const rows = await ctx.services.orm.em.fork().find(PaymentNotification, where, { orderBy: { id: 'desc' }, limit: limit + 1 });
    return connection(rows.slice(0, limit), rows.length > limit);
  }

  @FieldResolver(() => [Payment])
  payments(@Root() order: Order, @Ctx() ctx: GraphQLContext): Promise<Payment[]> {
    return ctx.loaders.payments.load(order.id);
  }

  @FieldResolver(() => [Refund])
  refunds(@Root() order: Order, @Ctx() ctx: GraphQLContext): Promise<Refund[]> {
    return ctx.loaders.refunds.load(order.id);
  }
}
