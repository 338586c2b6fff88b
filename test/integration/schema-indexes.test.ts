import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initOrm, type Orm } from '../../src/shared/db/orm';
import { createPostgresDatabase, postgresAvailable } from '../helpers/services';

/**
 * Every index is written on each insert (and, for the columns it holds, each update) of its table, so the schema the
 * migrations build has none that another makes redundant: no plain index whose columns lead another index of the same
 * table (the longer one serves every lookup the shorter would). Regression: products, coupons and reconciliation
 * reports had a `merchant_id` index beside a unique one starting with it, refunds `(order_id)` beside
 * `(order_id, idempotency_key)`, and SQLite `order_events (order_id)` beside `(order_id, at)`. (The lone `merchant_id`
 * indexes of orders and payments, which no query used, went in the same migration; with them, a createOrder wrote
 * about a fifth more pages to SQLite's WAL.)
 */
interface IndexDef {
  table: string;
  name: string;
  columns: string[];
  unique: boolean;
}

const QUERIES = {
  sqlite: `select m.name as "table", il.name as name, il."unique" as "unique", ii.name as "column"
             from sqlite_master m join pragma_index_list(m.name) il join pragma_index_info(il.name) ii
            where m.type = 'table' and m.name not like 'sqlite_%' and m.name <> 'mikro_orm_migrations'
            order by 1, 2, ii.seqno`,
  postgresql: `select t.relname as "table", i.relname as name, x.indisunique as "unique", a.attname as "column"
                 from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
                 join pg_namespace ns on ns.oid = t.relnamespace
                 cross join lateral unnest(x.indkey::int2[]) with ordinality as k(attnum, n)
                 join pg_attribute a on a.attrelid = t.oid and a.attnum = k.attnum
                where ns.nspname = current_schema() and t.relname <> 'mikro_orm_migrations'
                order by 1, 2, k.n`,
};

async function indexesOf(orm: Orm, driver: keyof typeof QUERIES): Promise<IndexDef[]> {
  const rows = await orm.em.getConnection().execute<Array<{ table: string; name: string; unique: number | boolean; column: string }>>(QUERIES[driver]);
  const byName = new Map<string, IndexDef>();
  for (const r of rows) {
    const key = `${r.table}.${r.name}`;
    const def = byName.get(key) ?? { table: r.table, name: r.name, columns: [], unique: Boolean(r.unique) };
    def.columns.push(r.column);
    byName.set(key, def);
  }
  return [...byName.values()];
}

/** Plain indexes whose columns are a leading prefix of another index of the same table. */
function redundant(indexes: IndexDef[]): string[] {
  return indexes
    .filter((a) => !a.unique)
    .filter((a) => indexes.some((b) => b !== a && b.table === a.table && b.columns.length >= a.columns.length && a.columns.every((c, i) => b.columns[i] === c)))
    .map((a) => `${a.table}.${a.name} (${a.columns.join(', ')})`);
}

describe.each(['sqlite', 'postgresql'] as const)('indexes the migrations build on %s', (driver) => {
  let orm: Orm | undefined;
  let cleanup: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    if (driver === 'postgresql') {
      if (!(await postgresAvailable())) return;
      const db = await createPostgresDatabase();
      orm = await initOrm({ driver, url: db.url });
      cleanup = db.drop;
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'orders-indexes-'));
      orm = await initOrm({ driver, path: join(dir, 'orders.sqlite3') });
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    }
    await orm.getMigrator().up();
  });

  afterAll(async () => {
    await orm?.close(true);
    await cleanup();
  });

  it('has no index that a longer one on the same table makes redundant', async (t) => {
    if (!orm) return t.skip();
    const indexes = await indexesOf(orm, driver);
    // The lookups the hot paths make are still indexed.
    const has = (table: string, columns: string[]) => indexes.some((i) => i.table === table && columns.every((c, n) => i.columns[n] === c));
    expect(has('order_events', ['order_id', 'at'])).toBe(true);
    expect(has('payments', ['order_id', 'status'])).toBe(true);
    expect(has('payments', ['payment_no'])).toBe(true);
    expect(has('products', ['merchant_id', 'sku'])).toBe(true);
    expect(redundant(indexes)).toEqual([]);
  });
});
