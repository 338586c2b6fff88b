import { OptimisticLockError } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/knex';

/**
 * Hand-written statements for the hot paths (createOrder, payOrder's bookkeeping, applying a provider result, the
 * subscription snapshot), run on the ORM's own connection and inside its transaction when there is one.
 *
 * Why by hand: the benchmarks (README, "Performance") showed MikroORM's unit of work costing more CPU than the SQL on
 * these paths, re-reading rows it had just read, and sending UPDATEs of unchanged datetime columns on SQLite. Here each
 * step is one explicit statement: conditional updates guarded by the row's version, inserts with exactly the columns
 * the entities define. Everything else keeps using entities. Both databases take the same SQL; the few differences
 * (how a date or a boolean is stored, merging into a JSON column) are the methods below.
 *
 * MikroORM inlines parameters with the platform's own escaping before the statement reaches the driver (as it does
 * for every query it sends; a Date becomes epoch milliseconds on SQLite, as its entities store them); `?` marks a
 * parameter.
 */
export class Sql {
  readonly dialect: 'sqlite' | 'postgresql';

  constructor(private readonly em: EntityManager) {
    this.dialect = em.getPlatform().constructor.name.toLowerCase().includes('postgre') ? 'postgresql' : 'sqlite';
  }

  async rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.execute(sql, params, 'all')) as T[];
  }

  async one<T>(sql: string, params: unknown[] = []): Promise<T | null> {
    return (await this.rows<T>(sql, params))[0] ?? null;
  }

  /** Runs a write; answers the number of rows it changed. */
  async run(sql: string, params: unknown[] = []): Promise<number> {
    const res = await this.execute(sql, params, 'run');
    return (res as { affectedRows?: number }).affectedRows ?? 0;
  }

  /** The connection's raw execute does not map driver errors; done here so a duplicate key is still recognisable. */
  private async execute(sql: string, params: unknown[], method: 'all' | 'run'): Promise<unknown> {
    try {
      return await this.em.getConnection().execute(sql, params, method, this.em.getTransactionContext());
    } catch (err) {
      throw this.em.getDriver().convertException(err as Error);
    }
  }

  /** A conditional update that must change exactly one row; otherwise a concurrent change won (callers retry). */
  async runOne(sql: string, params: unknown[], what: string): Promise<void> {
    if ((await this.run(sql, params)) !== 1) throw new OptimisticLockError(`${what} was changed concurrently`);
  }

  bool(b: boolean): boolean | number {
    return this.dialect === 'sqlite' ? (b ? 1 : 0) : b;
  }

  json(v: unknown): string | null {
    return v === null || v === undefined ? null : JSON.stringify(v);
  }

  /** SQL setting `key` of a JSON object column to a JSON parameter (`?`), keeping its other keys. */
  jsonSetKey(column: string, key: string): string {
    return this.dialect === 'sqlite'
      ? `json_set(coalesce(${column}, '{}'), '$.${key}', json(?))`
      : `jsonb_set(coalesce(${column}, '{}'::jsonb), '{${key}}', ?::jsonb)`;
  }
}

/** Reads a datetime column of a raw row (a number on SQLite, a Date on PostgreSQL). */
export function readDate(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v : new Date(v as number | string);
}

/** Reads a JSON column of a raw row (text on SQLite, already parsed on PostgreSQL). */
export function readJson<T>(v: unknown): T | null {
  if (v === null || v === undefined) return null;
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}

/** Reads an integer column (PostgreSQL's bigint/count come back as strings). */
export function readInt(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}
