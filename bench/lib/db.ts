import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { initOrm } from '../../src/shared/db/orm';

/**
 * Bench databases. Each run migrates one template per driver with the service's own migrations (MikroORM, in this
 * process), seeds the catalog into it with the plain driver, and every target (floor or service, per workload) gets a
 * fresh copy: `CREATE DATABASE … TEMPLATE` on PostgreSQL, a file copy on SQLite. So floor and service always start
 * from identical, equally small tables, and nothing is ANALYZEd before a run (stack.md: stale plans on grown tables).
 *
 * Bench setup writes rows (catalog, pre-created PAYING orders and their payments) with the plain driver, because it
 * is fast and the rows are exactly what the service would have written (checked by the service reading them).
 */

export type Driver = 'sqlite' | 'postgresql';

export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface BenchDb {
  driver: Driver;
  name: string;
  /** DATABASE_URL for the service. */
  url: string;
  /** PostgreSQL connection URL, or the SQLite file path. */
  location: string;
  drop(): Promise<void>;
}

/** Catalog used by every workload: 100 SKUs, prices 1.00–100.00 CNY, stock that never runs out. */
export const SKUS: Array<{ sku: string; name: string; price: number }> = Array.from({ length: 100 }, (_, i) => ({
  sku: `SKU-${String(i).padStart(3, '0')}`,
  name: `Bench product ${i}`,
  price: 100 * (1 + (i % 100)),
}));
const STOCK = 1_000_000_000;

function pgUrl(db: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

async function pgAdmin<T>(work: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

export class DbFactory {
  private readonly sqliteDir: string;
  private readonly templates = new Map<Driver, string>();
  private readonly live = new Set<BenchDb>();
  private counter = 0;

  constructor(private readonly runId: string) {
    this.sqliteDir = join(os.tmpdir(), `bench-${runId}`);
  }

  /** Migrates and seeds the template of a driver (once per run). */
  async template(driver: Driver): Promise<string> {
    const existing = this.templates.get(driver);
    if (existing) return existing;
    let location: string;
    if (driver === 'postgresql') {
      const name = `bench_${this.runId}_tpl`;
      await pgAdmin(async (c) => {
        await c.query(`drop database if exists ${name} with (force)`);
        await c.query(`create database ${name}`);
      });
      location = pgUrl(name);
      await migrate({ driver: 'postgresql', url: location });
      await seedCatalogPg(location);
    } else {
      mkdirSync(this.sqliteDir, { recursive: true });
      location = join(this.sqliteDir, 'template.sqlite3');
      await migrate({ driver: 'sqlite', path: location });
      seedCatalogSqlite(location);
    }
    this.templates.set(driver, location);
    return location;
  }

  /** A fresh database copied from the driver's template. */
  async create(driver: Driver, label: string): Promise<BenchDb> {
    const tpl = await this.template(driver);
    const name = `bench_${this.runId}_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${++this.counter}`;
    let db: BenchDb;
    if (driver === 'postgresql') {
      const tplName = new URL(tpl).pathname.slice(1);
      await pgAdmin((c) => c.query(`create database ${name} template ${tplName}`));
      const location = pgUrl(name);
      db = {
        driver,
        name,
        url: location,
        location,
        drop: async () => {
          this.live.delete(db);
          await pgAdmin((c) => c.query(`drop database if exists ${name} with (force)`));
        },
      };
    } else {
      const location = join(this.sqliteDir, `${name}.sqlite3`);
      copyFileSync(tpl, location);
      db = {
        driver,
        name,
        url: `sqlite:${location}`,
        location,
        drop: async () => {
          this.live.delete(db);
          for (const suffix of ['', '-wal', '-shm']) rmSync(location + suffix, { force: true });
        },
      };
    }
    this.live.add(db);
    return db;
  }

  /** Drops every database of this run, templates included. */
  async cleanup(): Promise<void> {
    for (const db of [...this.live]) await db.drop().catch(() => undefined);
    const tpl = this.templates.get('postgresql');
    if (tpl) {
      const name = new URL(tpl).pathname.slice(1);
      await pgAdmin((c) => c.query(`drop database if exists ${name} with (force)`)).catch(() => undefined);
    }
    if (existsSync(this.sqliteDir)) rmSync(this.sqliteDir, { recursive: true, force: true });
    this.templates.clear();
  }
}

async function migrate(database: { driver: 'postgresql'; url: string } | { driver: 'sqlite'; path: string }): Promise<void> {
  const orm = await initOrm(database, { logger: () => undefined, debug: false });
  try {
    await orm.getMigrator().up();
  } finally {
    await orm.close(true);
  }
}

async function seedCatalogPg(url: string): Promise<void> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    for (const p of SKUS) {
      await c.query(
        `insert into products (id, merchant_id, created_at, updated_at, sku, name, price_amount, currency, stock, active)
         values ($1, 'default', now(), now(), $2, $3, $4, 'CNY', $5, true)`,
        [uuidv7(), p.sku, p.name, p.price, STOCK],
      );
    }
  } finally {
    await c.end();
  }
}

function seedCatalogSqlite(path: string): void {
  const db = openSqlite(path);
  try {
    const now = Date.now();
    const ins = db.prepare(
      `insert into products (id, merchant_id, created_at, updated_at, sku, name, price_amount, currency, stock, active)
       values (?, 'default', ?, ?, ?, ?, ?, 'CNY', ?, 1)`,
    );
    db.transaction(() => {
      for (const p of SKUS) ins.run(uuidv7(), now, now, p.sku, p.name, p.price, STOCK);
    })();
  } finally {
    db.close();
  }
}

// ─── better-sqlite3 without @types (not installed): the few members the bench uses ───────────────────────────────

export interface SqliteStatement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): Record<string, unknown> | undefined;
  all(...params: unknown[]): Array<Record<string, unknown>>;
}
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): void;
  pragma(sql: string): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  close(): void;
}
type SqliteCtor = new (path: string, options?: Record<string, unknown>) => SqliteDatabase;

export function openSqlite(path: string): SqliteDatabase {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Database = require('better-sqlite3') as SqliteCtor;
  const db = new Database(path);
  db.pragma('journal_mode = wal');
  db.pragma('busy_timeout = 5000');
  // As the service (src/shared/db/orm.ts): every COMMIT synced before it is answered.
  db.pragma('synchronous = full');
  return db;
}

// ─── pre-created orders ──────────────────────────────────────────────────────────────────────────────────────────

export interface PayingOrder {
  orderId: string;
  orderNo: string;
  customerId: string;
  paymentId: string;
  paymentNo: string;
  amount: number;
}

const ITEM = (amount: number) =>
  JSON.stringify([{ sku: 'SKU-000', name: 'Bench product 0', unitPriceAmount: amount, quantity: 1, lineTotalAmount: amount }]);

/**
 * Orders in PAYING with one PENDING WeChat Native payment each, as payOrder leaves them (order version 3: created,
 * touched by the payment row, moved to PAYING; payment version 2: created, session saved). Expiry and the next
 * provider query are a day away, so the timeout sweeper and the query fallback leave them alone.
 */
export async function insertPayingOrders(db: BenchDb, orders: PayingOrder[]): Promise<void> {
  const day = 24 * 3600_000;
  if (db.driver === 'postgresql') {
    const c = new Client({ connectionString: db.location });
    await c.connect();
    try {
      for (let i = 0; i < orders.length; i += 1000) {
        const chunk = orders.slice(i, i + 1000);
        await c.query('begin');
        await c.query(
          `insert into orders (id, created_at, updated_at, order_no, status, customer_id, items, currency, subtotal_amount,
             shipping_amount, total_amount, expires_at, version)
           select u.id, now(), now(), u.order_no, 'PAYING', u.customer_id, u.items::jsonb, 'CNY', u.amount, 0, u.amount,
             now() + interval '1 day', 3
           from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[]) as u(id, order_no, customer_id, items, amount)`,
          [chunk.map((o) => o.orderId), chunk.map((o) => o.orderNo), chunk.map((o) => o.customerId), chunk.map((o) => ITEM(o.amount)), chunk.map((o) => o.amount)],
        );
        await c.query(
          `insert into payments (id, created_at, updated_at, order_id, payment_no, channel, status, amount, currency, session,
             expires_at, next_query_at, attempts, version)
           select u.id, now(), now(), u.order_id, u.payment_no, 'WECHAT_NATIVE', 'PENDING', u.amount, 'CNY',
             jsonb_build_object('qrCodeUrl', 'weixin://wxpay/bizpayurl?pr=' || u.payment_no),
             now() + interval '1 day', now() + interval '1 day', 0, 2
           from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[]) as u(id, order_id, payment_no, amount)`,
          [chunk.map((o) => o.paymentId), chunk.map((o) => o.orderId), chunk.map((o) => o.paymentNo), chunk.map((o) => o.amount)],
        );
        await c.query('commit');
      }
    } finally {
      await c.end();
    }
    return;
  }
  const s = openSqlite(db.location);
  try {
    const now = Date.now();
    const insOrder = s.prepare(
      `insert into orders (id, merchant_id, created_at, updated_at, order_no, status, customer_id, items, currency,
         subtotal_amount, discount_amount, shipping_amount, total_amount, paid_amount, refunded_amount, expires_at, version)
       values (?, 'default', ?, ?, ?, 'PAYING', ?, ?, 'CNY', ?, 0, 0, ?, 0, 0, ?, 3)`,
    );
    const insPayment = s.prepare(
      `insert into payments (id, merchant_id, created_at, updated_at, order_id, payment_no, channel, status, amount, currency,
         session, expires_at, next_query_at, attempts, version)
       values (?, 'default', ?, ?, ?, ?, 'WECHAT_NATIVE', 'PENDING', ?, 'CNY', ?, ?, ?, 0, 2)`,
    );
    s.transaction(() => {
      for (const o of orders) {
        insOrder.run(o.orderId, now, now, o.orderNo, o.customerId, ITEM(o.amount), o.amount, o.amount, now + day);
        insPayment.run(o.paymentId, now, now, o.orderId, o.paymentNo, o.amount, JSON.stringify({ qrCodeUrl: `weixin://wxpay/bizpayurl?pr=${o.paymentNo}` }), now + day, now + day);
      }
    })();
  } finally {
    s.close();
  }
}

/** Runs one read-only query for checks after a run (PAID exactly once, events seen). */
export async function query<T extends Record<string, unknown>>(db: BenchDb, sql: { pg: string; sqlite: string }, params: unknown[] = []): Promise<T[]> {
  if (db.driver === 'postgresql') {
    const c = new Client({ connectionString: db.location });
    await c.connect();
    try {
      return (await c.query(sql.pg, params)).rows as T[];
    } finally {
      await c.end();
    }
  }
  const s = openSqlite(db.location);
  try {
    return s.prepare(sql.sqlite).all(...params) as T[];
  } finally {
    s.close();
  }
}

/** PostgreSQL: transactions committed in the database so far (pg_stat_database.xact_commit; the stats are flushed
 * lazily, so callers wait a moment before reading). */
export async function pgXactCommit(db: BenchDb): Promise<number> {
  if (db.driver !== 'postgresql') return NaN;
  return pgAdmin(async (c) => {
    await c.query('select pg_stat_clear_snapshot()');
    const r = await c.query('select xact_commit from pg_stat_database where datname = $1', [db.name]);
    return Number(r.rows[0]?.xact_commit ?? NaN);
  });
}

/** Deterministic-looking merchant numbers of the service's shape: P + 14-digit China-time stamp + 10 digits. */
export function paymentNo(seq: number, now = new Date()): string {
  const china = new Date(now.getTime() + 8 * 3600_000).toISOString().slice(0, 19).replace(/[-T:]/g, '');
  return `P${china}${String(seq).padStart(10, '0')}`;
}

export function orderNo(seq: number, now = new Date()): string {
  const china = new Date(now.getTime() + 8 * 3600_000).toISOString().slice(0, 19).replace(/[-T:]/g, '');
  return `${china}${String(seq).padStart(8, '0')}`;
}

export const newId = (): string => uuidv7();
