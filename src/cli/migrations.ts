/**
 * `npm run migration:create -- [name]`: writes a new migration for each driver from the difference between the
 * entities and the schema the committed migrations build. Works on scratch databases (a temp SQLite file and a
 * scratch PostgreSQL database on DATABASE_URL's server, default postgres://postgres@127.0.0.1:5432/test), never on yours.
 */
import 'reflect-metadata';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MikroORM } from '@mikro-orm/core';
import { ormOptions } from '../shared/db/orm';

async function createFor(driver: 'sqlite' | 'postgresql', name: string): Promise<void> {
  const database =
    driver === 'sqlite'
      ? ({ driver, path: join(mkdtempSync(join(tmpdir(), 'mig-')), 'scratch.sqlite3') } as const)
      : ({ driver, url: await scratchPostgres() } as const);
  const base = ormOptions(database);
  const orm = await MikroORM.init({
    ...base,
    migrations: { ...base.migrations, path: resolve('migrations', driver), emit: 'ts', fileName: (ts: string) => `Migration${ts}_${name}` },
  });
  try {
    const migrator = orm.getMigrator();
    await migrator.up();
    const result = await migrator.createMigration(resolve('migrations', driver), false, false, name);
    console.log(result.fileName ? `${driver}: wrote migrations/${driver}/${result.fileName}` : `${driver}: no changes`);
  } finally {
    await orm.close(true);
  }
}

async function scratchPostgres(): Promise<string> {
  const url = new URL(process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : 'postgres://postgres@127.0.0.1:5432/test');
  const { Client } = await import('pg');
  const admin = new Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query('drop database if exists orders_migration_scratch');
  await admin.query('create database orders_migration_scratch');
  await admin.end();
  url.pathname = '/orders_migration_scratch';
  return url.toString();
}

async function main(): Promise<void> {
  const [command, name = 'change'] = process.argv.slice(2);
  if (command !== 'create') {
    console.error('usage: npm run migration:create -- <name>');
    process.exit(2);
  }
  await createFor('sqlite', name);
  await createFor('postgresql', name);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
