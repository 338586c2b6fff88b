import { describe, expect, it } from 'vitest';
import { Coupon, CouponKind } from '../../src/catalog/coupon.entity';
import { couponDiscount, priceOrder } from '../../src/catalog/pricing';
import { Product } from '../../src/catalog/product.entity';

const product = (sku: string, priceAmount: number, currency = 'CNY') =>
  Object.assign(new Product(), { sku, name: `Item ${sku}`, priceAmount, currency, stock: 10, active: true });
const coupon = (over: Partial<Coupon>) =>
  Object.assign(new Coupon(), { code: 'C', kind: CouponKind.FIXED, value: 100, minSpendAmount: 0, usedCount: 0, ...over });
const shipping = { flatFee: 1000, freeThreshold: 9900 };
const now = new Date('2026-11-26T12:00:00Z');

describe('pricing', () => {
  it('prices lines from the catalog with a name and price snapshot', () => {
    const q = priceOrder([{ product: product('A', 1999), quantity: 3 }, { product: product('B', 1), quantity: 1 }], null, shipping, now);
    expect(q.items).toEqual([
      { sku: 'A', name: 'Item A', unitPriceAmount: 1999, quantity: 3, lineTotalAmount: 5997 },
      { sku: 'B', name: 'Item B', unitPriceAmount: 1, quantity: 1, lineTotalAmount: 1 },
    ]);
    expect(q).toMatchObject({ subtotalAmount: 5998, discountAmount: 0, shippingAmount: 1000, totalAmount: 6998, currency: 'CNY' });
  });

  it('ships free from the threshold on, counting goods after the discount', () => {
    const at = (price: number, c: Coupon | null = null) => priceOrder([{ product: product('A', price), quantity: 1 }], c, shipping, now);
    expect(at(9899).shippingAmount).toBe(1000);
    expect(at(9900).shippingAmount).toBe(0);
    expect(at(10000, coupon({ value: 200 })).shippingAmount).toBe(1000); // 9800 after discount
    expect(priceOrder([{ product: product('A', 10 ** 6), quantity: 1 }], null, { flatFee: 500, freeThreshold: null }, now).shippingAmount).toBe(500);
  });

  it('FIXED takes value fen off, never more than the subtotal', () => {
    expect(couponDiscount(coupon({ value: 300 }), 1000, now)).toBe(300);
    expect(couponDiscount(coupon({ value: 3000 }), 1000, now)).toBe(1000);
  });

  it('PERCENT rounds half up to a whole fen, the same way every time', () => {
    const pct = (value: number, subtotal: number) => couponDiscount(coupon({ kind: CouponKind.PERCENT, value }), subtotal, now);
    expect(pct(10, 1005)).toBe(101); // 100.5 → 101
    expect(pct(10, 1004)).toBe(100); // 100.4 → 100
    expect(pct(15, 333)).toBe(50); // 49.95 → 50
    expect(pct(33, 1)).toBe(0); // 0.33 → 0
    expect(pct(50, 1)).toBe(1); // 0.5 → 1
    expect(pct(100, 12345)).toBe(12345);
  });

  it('minimum spend compares with the subtotal', () => {
    expect(couponDiscount(coupon({ minSpendAmount: 5000 }), 5000, now)).toBe(100);
    expect(() => couponDiscount(coupon({ minSpendAmount: 5000 }), 4999, now)).toThrow(expect.objectContaining({ code: 'COUPON_INVALID' }));
  });

  it('outside its window or over its usage limit a coupon is COUPON_INVALID', () => {
    const invalid = expect.objectContaining({ code: 'COUPON_INVALID' });
    expect(() => couponDiscount(coupon({ startsAt: new Date('2026-11-27T00:00:00Z') }), 1000, now)).toThrow(invalid);
    expect(() => couponDiscount(coupon({ endsAt: now }), 1000, now)).toThrow(invalid);
    expect(couponDiscount(coupon({ startsAt: now, endsAt: new Date(now.getTime() + 1) }), 1000, now)).toBe(100);
    expect(() => couponDiscount(coupon({ usageLimit: 2, usedCount: 2 }), 1000, now)).toThrow(invalid);
    expect(couponDiscount(coupon({ usageLimit: 2, usedCount: 1 }), 1000, now)).toBe(100);
  });

  it('refuses mixed currencies', () => {
    expect(() =>
      priceOrder([{ product: product('A', 1, 'CNY'), quantity: 1 }, { product: product('B', 1, 'USD'), quantity: 1 }], null, shipping, now),
    ).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT' }));
  });
});
