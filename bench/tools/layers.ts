/**
 * `node dist/bench/tools/layers.js [postgresql|sqlite] [orders] [concurrency]`: where createOrder's CPU goes, by
 * layer, in this one process (no HTTP): the service's OrdersService.create (MikroORM unit of work, the same SQL the
 * service sends) against the floor's plain-driver transaction (bench/floors/store.ts), both on fresh databases from
 * the bench template. Subtracting these from the HTTP results (service vs floor CPU per order) leaves what HTTP,
 * Express, Apollo and GraphQL add. A diagnostic for finding causes, not part of `npm run bench`.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { CatalogService } from '../../src/catalog/catalog.service';
import { OrdersService } from '../../src/orders/orders.service';
import { Outbox } from '../../src/realtime/outbox';
import { InProcessPubSub } from '../../src/realtime/pubsub';
import { initOrm } from '../../src/shared/db/orm';
import { createLogger } from '../../src/shared/logger';
import { openStore } from '../floors/store';
import { DbFactory, SKUS, type Driver } from '../lib/db';

async function measure(label: string, total: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 200; i++) await op(1_000_000 + i); // warm-up
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await op(next++);
    }),
  );
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `${label.padEnd(44)} ${((total * 1000) / wall).toFixed(0).padStart(6)} orders/s  ${((cpu.user + cpu.system) / 1000 / total).toFixed(3)} ms CPU/order (this process)`,
  );
}

async function main(): Promise<void> {
  const driver = (process.argv[2] ?? 'postgresql') as Driver;
  const total = Number(process.argv[3] ?? 3000);
  const concurrency = Number(process.argv[4] ?? 16);
  const dbs = new DbFactory(`layers_${process.pid}`);
  try {
    const a = await dbs.create(driver, 'layers_orm');
    const b = await dbs.create(driver, 'layers_floor');
    const database = driver === 'postgresql' ? { driver, url: a.location } : { driver, path: a.location };
    const orm = await initOrm(database as never, { logger: () => undefined });
    const outbox = new Outbox(orm, new InProcessPubSub(), createLogger('silent'));
    const orders = new OrdersService(orm, new CatalogService(orm), outbox, { flatFee: 1000, freeThreshold: 9900 }, 86_400);
    const sku = (i: number) => SKUS[(i * 7919) % SKUS.length]!.sku;
    await measure(`OrdersService.create (MikroORM, ${driver})`, total, concurrency, (i) =>
      orders.create({ id: `c${i % 1000}`, role: 'customer' }, { items: [{ sku: sku(i), quantity: 1 }], idempotencyKey: `k-${i}` }),
    );
    await orm.close(true);
    const store = openStore(b.url);
    await measure(`floor store.createOrder (plain driver, ${driver})`, total, concurrency, (i) => {
      const lines = [{ sku: sku(i), quantity: 1 }];
      const hash = createHash('sha256').update(JSON.stringify(lines)).digest('hex');
      return store.createOrder(`c${i % 1000}`, lines, `k-${i}`, hash);
    });
    await store.close();
  } finally {
    await dbs.cleanup();
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
