import { MikroORM, type Options } from '@mikro-orm/core';
import { BetterSqliteKnexDialect, type AbstractSqlDriver, type EntityManager } from '@mikro-orm/knex';
import { BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { AppConfig } from '../../config/config';
import { ENTITIES } from './entities';
import { registerSqliteConnection, syncKnexWrites } from './wal-sync';
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
  // The connections these options open run with synchronous = NORMAL (sqliteSettings); knex's statements on them
  // answer after the WAL's sync (wal-sync.ts).
  syncKnexWrites(BetterSqliteKnexDialect);
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
 * instead of failing at once. Durability as on PostgreSQL (synchronous_commit = on): nothing is answered before it is
 * on disk. On a file in WAL mode that sync runs off the event loop after COMMIT (wal-sync.ts), so the connection
 * itself runs with synchronous = NORMAL; otherwise (an in-memory database, a file that refused WAL) COMMIT syncs with
 * FULL. Said explicitly because better-sqlite3's default depends on the file (FULL on the connection that switches a
 * new file to WAL, NORMAL when the file is already in WAL, i.e. on every later start).
 */
function sqliteSettings(
  db: Parameters<typeof registerSqliteConnection>[0] & { pragma(statement: string, options?: { simple: boolean }): unknown },
  done: (err: Error | null, db: unknown) => void,
): void {
  try {
    const syncedHere = registerSqliteConnection(db, db.pragma('journal_mode = wal', { simple: true }));
    db.pragma('busy_timeout = 5000');
    db.pragma(syncedHere ? 'synchronous = normal' : 'synchronous = full');
    done(null, db);
  } catch (err) {
    done(err as Error, db);
  }
}

export async function initOrm(database: AppConfig['database'], extra: Partial<Options> = {}): Promise<Orm> {
  return (await MikroORM.init(ormOptions(database, extra))) as Orm;
}
