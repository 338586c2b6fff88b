import { MikroORM, type Options } from '@mikro-orm/core';
import type { AbstractSqlDriver, EntityManager } from '@mikro-orm/knex';
import { BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { AppConfig } from '../../config/config';
import { ENTITIES } from './entities';
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
    migrations: { migrationsList: MIGRATIONS.sqlite, transactional: true, allOrNothing: true, snapshot: false, silent: true },
  } as Options;
}

export async function initOrm(database: AppConfig['database'], extra: Partial<Options> = {}): Promise<Orm> {
  const orm = (await MikroORM.init(ormOptions(database, extra))) as Orm;
  if (database.driver === 'sqlite') {
    // WAL lets readers run beside the writer; busy_timeout waits for the lock instead of failing at once.
    await orm.em.getConnection().execute('pragma journal_mode = wal');
    await orm.em.getConnection().execute('pragma busy_timeout = 5000');
  }
  return orm;
}
