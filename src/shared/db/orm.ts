import { MikroORM, type Options } from '@mikro-orm/core';
import type { AbstractSqlDriver, EntityManager } from '@mikro-orm/knex';
import { BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { AppConfig } from '../../config/config';
import { ENTITIES } from './entities';
import { registerSqliteConnection } from './wal-sync';
import { MIGRATIONS } from '../../../migrations';

/**
 * MikroORM for either database. Both run the same entities; migrations are kept per driver
 * (`migrations/sqlite`, `migrations/postgresql`) because their SQL differs (README: "Migrations").
 */
/** Both drivers are SQL drivers: services get the SQL EntityManager (query builder, raw updates). */
export type Orm = MikroORM<AbstractSqlDriver, EntityManager>;

export function ormOptions(database: AppConfig['database'], extra: Partial<Options> = {}): Options {
  const common = {
    entities: ENTITIES,
    extensions: [Migrator],
    forceUtcTimezone: true,
    allowGlobalContext: false,
    ignoreUndefinedInQuery: true,
    discovery: { warnWhenNoEntities: true },
    ...extra,
  } satisfies Partial<Options>;
  if (database.driver === 'postgresql') {
    return {
      ...common,
      driver: PostgreSqlDriver,
      clientUrl: database.url,
      pool: { min: 0, max: 20 },
      migrations: { migrationsList: MIGRATIONS.postgresql, transactional: true, allOrNothing: true, snapshot: false, silent: true },
    } as Options;
  }
  return {
    ...common,
    driver: BetterSqliteDriver,
    dbName: database.path,
    pool: { afterCreate: sqliteSettings },
    migrations: { migrationsList: MIGRATIONS.sqlite, transactional: true, allOrNothing: true, snapshot: false, silent: true },
  } as Options;
}

/**
 * Every SQLite connection, as it is opened. WAL lets readers run beside the writer; busy_timeout waits for the lock
 * instead of failing at once. synchronous = FULL: every COMMIT reaches the disk before it is answered, as on
 * PostgreSQL (synchronous_commit = on), so an order, payment or callback answered is not lost by a power cut. Said
 * explicitly because better-sqlite3's default depends on the file: FULL on the connection that switches a new file to
 * WAL, NORMAL (no sync at COMMIT) when the file is already in WAL, i.e. on every later start. The hot paths' own
 * transactions (shared/db/sql.ts) share one sync among those that arrive together and run it off the event loop
 * (wal-sync.ts); they too answer only once it is done.
 */
function sqliteSettings(
  db: { pragma(statement: string, options?: { simple: boolean }): unknown; name: string; memory: boolean },
  done: (err: Error | null, db: unknown) => void,
): void {
  try {
    registerSqliteConnection(db, db.pragma('journal_mode = wal', { simple: true }));
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = full');
    done(null, db);
  } catch (err) {
    done(err as Error, db);
  }
}

export async function initOrm(database: AppConfig['database'], extra: Partial<Options> = {}): Promise<Orm> {
  return (await MikroORM.init(ormOptions(database, extra))) as Orm;
}
