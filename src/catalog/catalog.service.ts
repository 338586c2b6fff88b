import { UniqueConstraintViolationException, raw } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/knex';
import type { Orm } from '../shared/db/orm';
import { DEFAULT_MERCHANT_ID, isId } from '../shared/db/entity';
import { Sql, readDate, readInt } from '../shared/db/sql';
import { DomainError, ErrorCode, badInput, notFound } from '../shared/errors';
import type { OrderItem } from '../orders/order.entity';
import { Coupon, CouponKind } from './coupon.entity';
import type { CatalogProduct, CouponTerms } from './pricing';
import { Product } from './product.entity';

export interface ProductInput {
  sku: string;
  name: string;
  priceAmount: number;
  currency?: string | null;
  stock: number;
  active?: boolean | null;
}

export interface CouponInput {
  code: string;
  kind: CouponKind;
  value: number;
  minSpendAmount?: number | null;
  startsAt?: Date | null;
  endsAt?: Date | null;
  usageLimit?: number | null;
}

/** Products, stock and coupons. Stock and coupon usage change only through conditional updates, never read-modify-write. */
export class CatalogService {
  /** Products by merchant and SKU as last read, for `productsForQuote`. */
  private readonly quoted = new Map<string, CatalogProduct>();

  constructor(private readonly orm: Orm) {}

  async listProducts(includeInactive: boolean, merchantId = DEFAULT_MERCHANT_ID): Promise<Product[]> {
    const where = includeInactive ? { merchantId } : { merchantId, active: true };
    return this.orm.em.fork().find(Product, where, { orderBy: { sku: 'asc' } });
  }

  async createProduct(input: ProductInput, merchantId = DEFAULT_MERCHANT_ID): Promise<Product> {
    const em = this.orm.em.fork();
    const product = em.create(Product, {
      merchantId,
      sku: input.sku,
      name: input.name,
      priceAmount: input.priceAmount,
      currency: input.currency ?? 'CNY',
      stock: input.stock,
      active: input.active ?? true,
    });
    try {
      await em.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) throw badInput(`A product with SKU ${input.sku} exists`);
      throw err;
    }
    return product;
  }

  async updateProduct(
    id: string,
    input: { name?: string | null; priceAmount?: number | null; active?: boolean | null },
  ): Promise<Product> {
    const em = this.orm.em.fork();
    const product = isId(id) ? await em.findOne(Product, { id }) : null;
    if (!product) throw notFound('Product');
    if (input.name != null) product.name = input.name;
    if (input.priceAmount != null) product.priceAmount = input.priceAmount;
    if (input.active != null) product.active = input.active;
    await em.flush();
    this.forgetQuoted(product.merchantId, [product.sku]);
    return product;
  }

  /** Adds (or, negative, removes) stock; a change that would go below zero is BAD_USER_INPUT and changes nothing. */
  async restockProduct(id: string, quantity: number): Promise<Product> {
    if (!isId(id)) throw notFound('Product');
    const em = this.orm.em.fork();
    const changed = await em
      .createQueryBuilder(Product)
      .update({ stock: raw('stock + ?', [quantity]), updatedAt: new Date() })
      .where({ id, stock: { $gte: -quantity } })
      .execute('run');
    const product = await em.findOne(Product, { id });
    if (!product) throw notFound('Product');
    if (!changed.affectedRows) throw badInput(`Stock of ${product.sku} is ${product.stock}; it cannot go below zero`);
    return product;
  }

  async createCoupon(input: CouponInput, merchantId = DEFAULT_MERCHANT_ID): Promise<Coupon> {
    if (input.kind === CouponKind.PERCENT && (input.value < 1 || input.value > 100)) {
      throw badInput('A PERCENT coupon takes a value from 1 to 100');
    }
    if (input.kind === CouponKind.FIXED && input.value < 1) throw badInput('A FIXED coupon takes a positive value');
    if (input.startsAt && input.endsAt && input.startsAt >= input.endsAt) throw badInput('startsAt must be before endsAt');
    const em = this.orm.em.fork();
    const coupon = em.create(Coupon, {
      merchantId,
      code: input.code,
      kind: input.kind,
      value: input.value,
      minSpendAmount: input.minSpendAmount ?? 0,
      startsAt: input.startsAt ?? null,
      endsAt: input.endsAt ?? null,
      usageLimit: input.usageLimit ?? null,
    });
    try {
      await em.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) throw badInput(`A coupon with code ${input.code} exists`);
      throw err;
    }
    return coupon;
  }

  /**
   * The products for order lines, in line order; unknown, inactive or repeated SKUs are BAD_USER_INPUT.
   * One hand-written read of plain rows (shared/db/sql.ts): previewOrder's, and `productsForQuote`'s for SKUs it has
   * not seen; createOrder otherwise prices from `productsForQuote` (PostgreSQL) or `reserveLines`.
   */
  async productsForLines(
    sql: Sql,
    lines: ReadonlyArray<{ sku: string; quantity: number }>,
    merchantId = DEFAULT_MERCHANT_ID,
  ): Promise<Array<{ product: CatalogProduct; quantity: number }>> {
    assertDistinctLines(lines);
    const skus = lines.map((l) => l.sku);
    const rows = await sql.rows<ProductRow>(
      `select ${PRODUCT_COLUMNS} from products where merchant_id = ? and sku in (${skus.map(() => '?').join(', ')})`,
      [merchantId, ...skus],
    );
    const bySku = new Map(rows.map((r) => [r.sku, r]));
    return lines.map((line) => {
      const r = bySku.get(line.sku);
      if (!r || !(r.active === true || r.active === 1)) throw badInput(`Unknown or unavailable SKU: ${line.sku}`, { sku: line.sku });
      return { product: catalogProduct(r), quantity: line.quantity };
    });
  }

  /**
   * The products for pricing createOrder ahead of its guarded reservation (`reserveQuoted`), as this process last read
   * them: only SKUs it has not seen are read. An entry gone stale (another instance or a direct change moved the price,
   * name or availability) is harmless: the reservation's guards miss, nothing is written, the caller forgets the
   * entries (`forgetQuoted`) and takes `reserveLines`' way, which prices from the row it reserves. On PostgreSQL this
   * saves createOrder a round trip (README, "Performance"). Bounded: emptied when it holds 10 000 SKUs.
   */
  async productsForQuote(
    sql: Sql,
    lines: ReadonlyArray<{ sku: string; quantity: number }>,
    merchantId = DEFAULT_MERCHANT_ID,
  ): Promise<Array<{ product: CatalogProduct; quantity: number }>> {
    assertDistinctLines(lines);
    const unseen = lines.filter((l) => !this.quoted.has(quotedKey(merchantId, l.sku)));
    if (unseen.length) {
      if (this.quoted.size + unseen.length > QUOTED_MAX) this.quoted.clear();
      for (const { product } of await this.productsForLines(sql, unseen, merchantId)) this.quoted.set(quotedKey(merchantId, product.sku), product);
    }
    return lines.map((l) => ({ product: this.quoted.get(quotedKey(merchantId, l.sku))!, quantity: l.quantity }));
  }

  forgetQuoted(merchantId: string, skus: readonly string[]): void {
    for (const sku of skus) this.quoted.delete(quotedKey(merchantId, sku));
  }

  async findCoupon(sql: Sql, code: string, merchantId = DEFAULT_MERCHANT_ID): Promise<CouponTerms> {
    const r = await sql.one<CouponRow>(
      `select id, code, kind, value, min_spend_amount, starts_at, ends_at, usage_limit, used_count from coupons
       where merchant_id = ? and code = ?`,
      [merchantId, code],
    );
    if (!r) throw new DomainError(ErrorCode.COUPON_INVALID, `Coupon ${code} does not exist`);
    return {
      id: r.id,
      code: r.code,
      kind: r.kind as CouponKind,
      value: readInt(r.value),
      minSpendAmount: readInt(r.min_spend_amount),
      startsAt: readDate(r.starts_at),
      endsAt: readDate(r.ends_at),
      usageLimit: r.usage_limit == null ? null : readInt(r.usage_limit),
      usedCount: readInt(r.used_count),
    };
  }

  /** Takes one use of a coupon; COUPON_INVALID when a concurrent order took the last one. */
  async takeCoupon(sql: Sql, coupon: CouponTerms): Promise<void> {
    await sql.later(
      'update coupons set used_count = used_count + 1 where id = ? and (usage_limit is null or usage_limit > used_count)',
      [coupon.id],
      () => new DomainError(ErrorCode.COUPON_INVALID, `Coupon ${coupon.code} has been used up`),
    );
  }

  async releaseCoupon(em: EntityManager, couponId: string): Promise<void> {
    await em
      .createQueryBuilder(Coupon)
      .update({ usedCount: raw('used_count - 1') })
      .where({ id: couponId, usedCount: { $gt: 0 } })
      .execute('run');
  }

  /**
   * Reserves stock for every line and answers the products, in line order, for pricing: one conditional UPDATE per
   * line that also returns what pricing needs (createOrder's hot path: no separate read). A miss fails the caller's
   * transaction, which rolls back what earlier lines took: BAD_USER_INPUT when a SKU is unknown or inactive (checked
   * for every line first, as `productsForLines` does), otherwise OUT_OF_STOCK.
   */
  async reserveLines(
    sql: Sql,
    lines: ReadonlyArray<{ sku: string; quantity: number }>,
    merchantId = DEFAULT_MERCHANT_ID,
  ): Promise<Array<{ product: CatalogProduct; quantity: number }>> {
    assertDistinctLines(lines);
    const reserved: Array<{ product: CatalogProduct; quantity: number }> = [];
    for (const { sku, quantity } of lines) {
      const [r] = await sql.rows<ProductRow>(
        `update products set stock = stock - ?, updated_at = ? where merchant_id = ? and sku = ? and active = ? and stock >= ?
         returning ${PRODUCT_COLUMNS}`,
        [quantity, new Date(), merchantId, sku, sql.bool(true), quantity],
      );
      if (!r) {
        await this.productsForLines(sql, lines, merchantId); // BAD_USER_INPUT for an unknown or inactive SKU
        throw new DomainError(ErrorCode.OUT_OF_STOCK, `Not enough stock for ${sku}`, { sku });
      }
      reserved.push({ product: catalogProduct(r), quantity });
    }
    return reserved;
  }

  /**
   * Reserves the stock of lines priced from an earlier read (`productsForQuote`), as queued writes (`Sql.later`)
   * guarded by what was read: a line whose product changed since (stock taken below the quantity; price, name or
   * availability changed) fails the transaction with StaleQuote and nothing is reserved; the caller then takes
   * `reserveLines`' way.
   */
  async reserveQuoted(
    sql: Sql,
    lines: ReadonlyArray<{ product: CatalogProduct; quantity: number }>,
    merchantId = DEFAULT_MERCHANT_ID,
  ): Promise<void> {
    for (const { product, quantity } of lines) {
      await sql.later(
        `update products set stock = stock - ?, updated_at = ?
         where merchant_id = ? and sku = ? and active = ? and stock >= ? and price_amount = ? and currency = ? and name = ?`,
        [quantity, new Date(), merchantId, product.sku, sql.bool(true), quantity, product.priceAmount, product.currency, product.name],
        () => new StaleQuote(product.sku),
      );
    }
  }

  async releaseStock(em: EntityManager, items: readonly OrderItem[], merchantId = DEFAULT_MERCHANT_ID): Promise<void> {
    for (const item of items) {
      await em
        .createQueryBuilder(Product)
        .update({ stock: raw('stock + ?', [item.quantity]) })
        .where({ merchantId, sku: item.sku })
        .execute('run');
    }
  }
}

const PRODUCT_COLUMNS = 'id, sku, name, price_amount, currency, active';

const QUOTED_MAX = 10_000;
const quotedKey = (merchantId: string, sku: string) => `${merchantId}\u0000${sku}`;

interface CouponRow {
  id: string;
  code: string;
  kind: string;
  value: number;
  min_spend_amount: number;
  starts_at: unknown;
  ends_at: unknown;
  usage_limit: number | null;
  used_count: number;
}

interface ProductRow {
  id: string;
  sku: string;
  name: string;
  price_amount: number;
  currency: string;
  active: unknown;
}

function catalogProduct(r: ProductRow): CatalogProduct {
  return { id: r.id, sku: r.sku, name: r.name, priceAmount: readInt(r.price_amount), currency: r.currency, active: true };
}

function assertDistinctLines(lines: ReadonlyArray<{ sku: string }>): void {
  if (lines.length === 0) throw badInput('An order needs at least one item');
  const skus = lines.map((l) => l.sku);
  const repeated = skus.find((s, i) => skus.indexOf(s) !== i);
  if (repeated) throw badInput(`SKU ${repeated} appears more than once; use one line with a quantity`);
}

/** A product changed between an order's pricing read and its reservation (`reserveQuoted`). */
export class StaleQuote extends Error {
  constructor(readonly sku: string) {
    super(`product ${sku} changed since it was read`);
  }
}
