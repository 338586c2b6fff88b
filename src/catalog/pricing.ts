import { DomainError, ErrorCode } from '../shared/errors';
import type { OrderItem } from '../orders/order.entity';
import { CouponKind, type Coupon } from './coupon.entity';
import type { Product } from './product.entity';

/** Shipping-fee rule from configuration: a flat fee per order, free when goods (after discount) reach the threshold. */
export interface ShippingRule {
  flatFee: number;
  /** null: never free. */
  freeThreshold: number | null;
}

export interface Quote {
  items: OrderItem[];
  currency: string;
  subtotalAmount: number;
  discountAmount: number;
  shippingAmount: number;
  totalAmount: number;
  couponCode: string | null;
}

/** What pricing and stock reservation need of a product. */
export type CatalogProduct = Pick<Product, 'id' | 'sku' | 'name' | 'priceAmount' | 'currency' | 'active'>;

/** What pricing needs of a coupon (read by hand on createOrder's hot path: CatalogService.findCoupon). */
export type CouponTerms = Pick<
  Coupon,
  'id' | 'code' | 'kind' | 'value' | 'minSpendAmount' | 'startsAt' | 'endsAt' | 'usageLimit' | 'usedCount'
>;

/** Largest total an order may have: GraphQL's Int is 32-bit. */
export const MAX_ORDER_TOTAL = 2_000_000_000;

/**
 * Prices an order from catalog data only (clients never send prices). Pure: no I/O, `now` passed in.
 * Coupon rules (contract): applies to the subtotal, not shipping; FIXED never exceeds the subtotal; PERCENT rounds
 * half up to a whole fen; `minSpendAmount` compares with the subtotal.
 */
export function priceOrder(
  lines: ReadonlyArray<{ product: CatalogProduct; quantity: number }>,
  coupon: CouponTerms | null,
  shipping: ShippingRule,
  now: Date,
): Quote {
  const currencies = new Set(lines.map((l) => l.product.currency));
  if (currencies.size !== 1) {
    throw new DomainError(ErrorCode.BAD_USER_INPUT, 'All items of an order must have the same currency');
  }
  const items: OrderItem[] = lines.map(({ product, quantity }) => ({
    sku: product.sku,
    name: product.name,
    unitPriceAmount: product.priceAmount,
    quantity,
    lineTotalAmount: product.priceAmount * quantity,
  }));
  const subtotalAmount = items.reduce((sum, i) => sum + i.lineTotalAmount, 0);
  const discountAmount = coupon ? couponDiscount(coupon, subtotalAmount, now) : 0;
  const goods = subtotalAmount - discountAmount;
  const free = shipping.freeThreshold !== null && goods >= shipping.freeThreshold;
  const shippingAmount = free ? 0 : shipping.flatFee;
  const totalAmount = goods + shippingAmount;
  if (totalAmount > MAX_ORDER_TOTAL) {
    throw new DomainError(ErrorCode.BAD_USER_INPUT, `An order's total may not exceed ${MAX_ORDER_TOTAL} minor units`);
  }
  return {
    items,
    currency: [...currencies][0]!,
    subtotalAmount,
    discountAmount,
    shippingAmount,
    totalAmount,
    couponCode: coupon?.code ?? null,
  };
}

/** The discount a coupon gives on `subtotal`, or COUPON_INVALID with the reason. */
export function couponDiscount(coupon: CouponTerms, subtotal: number, now: Date): number {
  const invalid = (why: string) => new DomainError(ErrorCode.COUPON_INVALID, `Coupon ${coupon.code} ${why}`);
  if (coupon.startsAt && now < coupon.startsAt) throw invalid('is not valid yet');
  if (coupon.endsAt && now >= coupon.endsAt) throw invalid('has expired');
  if (coupon.usageLimit != null && coupon.usedCount >= coupon.usageLimit) throw invalid('has been used up');
  if (subtotal < coupon.minSpendAmount) throw invalid(`needs a subtotal of at least ${coupon.minSpendAmount}`);
  if (coupon.kind === CouponKind.FIXED) return Math.min(coupon.value, subtotal);
  // Round half up in integer arithmetic: floor((subtotal * pct + 50) / 100).
  return Math.min(Math.floor((subtotal * coupon.value + 50) / 100), subtotal);
}
