import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initOrm } from '../../src/shared/db/orm';

/**
 * The embedded database syncs every COMMIT to disk before it is answered, on the first start and on every later one.
 * Regression: better-sqlite3 defaults to synchronous = FULL only on the connection that switches a new file to WAL;
 * a file already in WAL (every restart) opened with NORMAL, so an acknowledged order or callback could be lost by a
 * power cut after a restart but not before it.
 */
describe('SQLite durability', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orders-durability-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const settings = async () => {
    const orm = await initOrm({ driver: 'sqlite', path: join(dir, 'orders.sqlite3') });
    try {
      const [journal] = await orm.em.getConnection().execute<Array<{ journal_mode: string }>>('pragma journal_mode');
      const [sync] = await orm.em.getConnection().execute<Array<{ synchronous: number }>>('pragma synchronous');
      return { journal: journal!.journal_mode, synchronous: sync!.synchronous };
    } finally {
      await orm.close(true);
    }
  };

  it('uses WAL with synchronous = FULL (2) on a new file and again after a restart', async () => {
    expect(await settings()).toEqual({ journal: 'wal', synchronous: 2 });
    expect(await settings()).toEqual({ journal: 'wal', synchronous: 2 });
  });
});
