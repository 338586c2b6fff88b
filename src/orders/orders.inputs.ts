import {
  ArrayMaxSize,
  ArrayMinSize,
  IsInt,
  IsOptional,
  Length,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { Field, InputType, Int, ObjectType } from 'type-graphql';
import { PageInfo } from '../shared/graphql/pagination';
import { Order, OrderItem } from './order.entity';

/** Bounds of the contract: quantity 1–999 per line, at most 100 lines, capped strings. */
export const MAX_LINES = 100;
export const MAX_QUANTITY = 999;

@InputType()
export class OrderItemInput {
  @Field() @Length(1, 64) sku!: string;
  @Field(() => Int) @IsInt() @Min(1) @Max(MAX_QUANTITY) quantity!: number;
}

@InputType()
export class AddressInput {
  @Field() @Length(1, 50) name!: string;
  @Field() @Matches(/^\+?[0-9][0-9 -]{4,19}$/, { message: 'phone must be 5–20 digits, optionally with +, spaces or -' }) phone!: string;
  @Field() @Length(1, 50) province!: string;
  @Field() @Length(1, 50) city!: string;
  @Field(() => String, { nullable: true }) @IsOptional() @Length(1, 50) district?: string | null;
  @Field() @Length(1, 200) line1!: string;
  @Field(() => String, { nullable: true }) @IsOptional() @Matches(/^[0-9A-Za-z -]{3,10}$/, { message: 'postalCode must be 3–10 letters or digits' }) postalCode?: string | null;
}

@InputType()
export class OrderInput {
  @Field(() => [OrderItemInput])
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_LINES)
  @ValidateNested()
  items!: OrderItemInput[];

  @Field(() => String, { nullable: true }) @IsOptional() @Length(1, 64) couponCode?: string | null;

  @Field(() => AddressInput, { nullable: true }) @IsOptional() @ValidateNested() shippingAddress?: AddressInput | null;

  @Field(() => String, { nullable: true }) @IsOptional() @Length(0, 500) note?: string | null;
}

@InputType()
export class CreateOrderInput extends OrderInput {
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, 128)
  idempotencyKey?: string | null;
}

@ObjectType()
export class OrderQuote {
  @Field(() => [OrderItem]) items!: OrderItem[];
  @Field() currency!: string;
  @Field(() => Int) subtotalAmount!: number;
  @Field(() => Int) discountAmount!: number;
  @Field(() => Int) shippingAmount!: number;
  @Field(() => Int) totalAmount!: number;
  @Field(() => String, { nullable: true }) couponCode?: string | null;
}

@ObjectType()
export class OrderEdge {
  @Field() cursor!: string;
  @Field(() => Order) node!: Order;
}

@ObjectType()
export class OrderConnection {
  @Field(() => [OrderEdge]) edges!: OrderEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}
