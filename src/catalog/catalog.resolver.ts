import { IsIn, IsInt, IsOptional, Length, Matches, Max, Min } from 'class-validator';
import { Arg, Ctx, Field, ID, InputType, Int, Mutation, Query, Resolver } from 'type-graphql';
import { requireAdmin } from '../shared/auth';
import type { GraphQLContext } from '../shared/graphql/context';
import { Coupon, CouponKind } from './coupon.entity';
import { Product } from './product.entity';

const MAX_PRICE = 100_000_000;
const MAX_STOCK = 1_000_000_000;
/** Currencies the providers behind this service settle in. */
const CURRENCIES = ['CNY', 'HKD', 'USD', 'EUR', 'GBP', 'JPY', 'SGD'];

@InputType()
export class CreateProductInput {
  @Field() @Length(1, 64) @Matches(/^[A-Za-z0-9._-]+$/, { message: 'sku may contain letters, digits, . _ -' }) sku!: string;
  @Field() @Length(1, 200) name!: string;
  @Field(() => Int) @IsInt() @Min(1) @Max(MAX_PRICE) priceAmount!: number;
  @Field(() => String, { nullable: true }) @IsOptional() @IsIn(CURRENCIES) currency?: string | null;
  @Field(() => Int) @IsInt() @Min(0) @Max(MAX_STOCK) stock!: number;
  @Field(() => Boolean, { nullable: true }) active?: boolean | null;
}

@InputType()
export class UpdateProductInput {
  @Field(() => String, { nullable: true }) @IsOptional() @Length(1, 200) name?: string | null;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(1) @Max(MAX_PRICE) priceAmount?: number | null;
  @Field(() => Boolean, { nullable: true }) active?: boolean | null;
}

@InputType()
export class CreateCouponInput {
  @Field() @Length(1, 64) @Matches(/^[A-Za-z0-9_-]+$/, { message: 'code may contain letters, digits, _ -' }) code!: string;
  @Field(() => CouponKind) kind!: CouponKind;
  @Field(() => Int) @IsInt() @Min(1) @Max(MAX_PRICE) value!: number;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(0) @Max(MAX_PRICE) minSpendAmount?: number | null;
  @Field(() => Date, { nullable: true }) startsAt?: Date | null;
  @Field(() => Date, { nullable: true }) endsAt?: Date | null;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(1) usageLimit?: number | null;
}

@Resolver()
export class CatalogResolver {
  /** Active products for everyone; all products for admins. */
  @Query(() => [Product])
  products(@Ctx() ctx: GraphQLContext): Promise<Product[]> {
    return ctx.services.catalog.listProducts(ctx.user?.role === 'admin');
  }

  @Mutation(() => Product)
  createProduct(@Arg('input') input: CreateProductInput, @Ctx() ctx: GraphQLContext): Promise<Product> {
    requireAdmin(ctx.user);
    return ctx.services.catalog.createProduct(input);
  }

  @Mutation(() => Product)
  updateProduct(
    @Arg('id', () => ID) id: string,
    @Arg('input') input: UpdateProductInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Product> {
    requireAdmin(ctx.user);
    return ctx.services.catalog.updateProduct(id, input);
  }

  /** Adds (or, negative, removes) stock. */
  @Mutation(() => Product)
  restockProduct(
    @Arg('id', () => ID) id: string,
    @Arg('quantity', () => Int) quantity: number,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Product> {
    requireAdmin(ctx.user);
    return ctx.services.catalog.restockProduct(id, quantity);
  }

  @Mutation(() => Coupon)
  createCoupon(@Arg('input') input: CreateCouponInput, @Ctx() ctx: GraphQLContext): Promise<Coupon> {
    requireAdmin(ctx.user);
    return ctx.services.catalog.createCoupon(input);
  }
}
