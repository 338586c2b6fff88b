import type { Logger } from 'pino';
import { Coupon, CouponKind } from '../../catalog/coupon.entity';
import { Product } from '../../catalog/product.entity';
import type { Orm } from './orm';

/** A small demo catalog for an empty database, so a newcomer can order at once (SEED_DEMO=false turns it off). */
export async function seedDemoCatalog(orm: Orm, log: Logger): Promise<void> {
  const em = orm.em.fork();
  if ((await em.count(Product, {})) > 0) return;
  const products = [
    { sku: 'TEA-001', name: 'West Lake Longjing tea, 250 g', priceAmount: 12800, stock: 100 },
    { sku: 'MUG-002', name: 'Celadon tea mug', priceAmount: 4900, stock: 50 },
    { sku: 'SET-003', name: 'Travel tea set', priceAmount: 25900, stock: 20 },
    { sku: 'PIN-004', name: 'Enamel pin (test item, 1 fen)', priceAmount: 1, stock: 1000 },
  ];
  for (const p of products) em.create(Product, { ...p, currency: 'CNY', active: true });
  em.create(Coupon, { code: 'WELCOME10', kind: CouponKind.PERCENT, value: 10, minSpendAmount: 5000 });
  await em.flush();
  log.info({ products: products.length }, 'seeded the demo catalog');
}
