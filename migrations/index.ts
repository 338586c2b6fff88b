import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126112831_initial as PgInitial } from './postgresql/Migration20261126112831_initial';
import { Migration20261126112831_initial as SqliteInitial } from './sqlite/Migration20261126112831_initial';

/**
 * The committed migrations, one list per driver, in order. Listed explicitly (not globbed) so the same list works
 * from TypeScript sources (tests) and from the compiled build (npm start). `npm run migration:create -- <name>` writes
 * new files for both drivers (from the difference between the entities and these migrations); add them here.
 */
export const MIGRATIONS: { sqlite: MigrationObject[]; postgresql: MigrationObject[] } = {
  sqlite: [{ name: 'Migration20261126112831_initial', class: SqliteInitial }],
  postgresql: [{ name: 'Migration20261126112831_initial', class: PgInitial }],
};
