import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { initOrm } from '../../src/shared/db/orm';
import { WalSync } from '../../src/shared/db/wal-sync';

/**
 * The embedded database syncs every COMMIT to disk before it is answered, on the first start and on every later one.
 * Regression: better-sqlite3 defaults to synchronous = FULL only on the connection that switches a new file to WAL;
 * a file already in WAL (every restart) opened with NORMAL, and nothing else synced, so an acknowledged order or
 * callback could be lost by a power cut after a restart but not before it. Now every connection runs NORMAL on purpose
 * and every write is answered after the WAL's sync (wal-sync.ts), on every start.
 */
describe('SQLite durability', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orders-durability-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => vi.restoreAllMocks());

  const start = async () => {
    const orm = await initOrm({ driver: 'sqlite', path: join(dir, 'orders.sqlite3') });
    const syncs = vi.spyOn(WalSync.prototype as unknown as { sync(): Promise<void> }, 'sync');
    try {
      const connection = orm.em.getConnection();
      // `pragma journal_mode` may change the mode, so SQLite counts it as a write: read it before counting.
      const [journal] = await connection.execute<Array<{ journal_mode: string }>>('pragma journal_mode');
      const before = syncs.mock.calls.length;
      const [sync] = await connection.execute<Array<{ synchronous: number }>>('pragma synchronous');
      await connection.execute('select count(*) from sqlite_master');
      const reads = syncs.mock.calls.length - before;
      await connection.execute('create table if not exists probe (id integer primary key)');
      await connection.execute('insert into probe default values');
      return { journal: journal!.journal_mode, synchronous: sync!.synchronous, syncsForReads: reads, syncsForWrites: syncs.mock.calls.length - before - reads };
    } finally {
      await orm.close(true);
    }
  };

  it('uses WAL, and syncs each write before answering it, on a new file and again after a restart', async () => {
    const expected = { journal: 'wal', synchronous: 1, syncsForReads: 0, syncsForWrites: 2 };
    expect(await start()).toEqual(expected);
    expect(await start()).toEqual(expected);
  });

  it('an in-memory database, with no WAL to sync, keeps synchronous = FULL in COMMIT', async () => {
    const orm = await initOrm({ driver: 'sqlite', path: ':memory:' });
    try {
      const [sync] = await orm.em.getConnection().execute<Array<{ synchronous: number }>>('pragma synchronous');
      expect(sync!.synchronous).toBe(2);
    } finally {
      await orm.close(true);
    }
  });
});
