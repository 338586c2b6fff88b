import { fdatasync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Orm } from '../../src/shared/db/orm';
import { Sql } from '../../src/shared/db/sql';
import { WalSync } from '../../src/shared/db/wal-sync';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * SQLite's COMMIT sync off the event loop (src/shared/db/wal-sync.ts): the connection runs with synchronous = NORMAL,
 * and every write (a hot-path transaction, an ORM flush, a statement that commits itself) is answered only once a
 * sync of the WAL that started after its COMMIT has completed; a failed sync fails it; reads wait for nothing.
 */
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return { ...fs, fdatasync: vi.fn(fs.fdatasync) };
});

type Syncing = { sync(): Promise<void> };
const proto = WalSync.prototype as unknown as Syncing;

/** Holds every WAL sync until released; counts them. */
function gateSyncs() {
  const original = proto.sync;
  const gates: Array<() => void> = [];
  let started = 0;
  const spy = vi.spyOn(proto, 'sync').mockImplementation(async function (this: WalSync) {
    started++;
    await new Promise<void>((release) => gates.push(release));
    return original.call(this);
  });
  return {
    spy,
    started: () => started,
    releaseAll: () => gates.splice(0).forEach((release) => release()),
    whenStarted: async (n: number) => {
      while (started < n) await new Promise((r) => setTimeout(r, 2));
    },
  };
}

const settled = async (p: Promise<unknown>) => {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  await new Promise((r) => setTimeout(r, 20));
  return done;
};

describe('SQLite: a transaction is answered once its WAL is synced', () => {
  let t: TestApp;
  let orm: Orm;

  beforeAll(async () => {
    t = await startTestApp('sqlite');
    orm = t.app.services.orm;
    await orm.em.getConnection().execute('create table wal_probe (id varchar(10) primary key)');
  });
  afterAll(async () => t?.close());
  beforeEach(async () => orm.em.getConnection().execute('delete from wal_probe'));
  afterEach(() => vi.restoreAllMocks());

  const ids = async () =>
    (await Sql.on(orm.em.fork()).rows<{ id: string }>('select id from wal_probe order by id')).map((r) => r.id);
  const insert = (id: string) => Sql.transaction(orm.em, (sql) => sql.later('insert into wal_probe (id) values (?)', [id]));
  const synchronous = async () =>
    (await orm.em.getConnection().execute<Array<{ synchronous: number }>>('pragma synchronous'))[0]!.synchronous;

  it('committed first, answered after the sync; reads meanwhile wait for nothing', async () => {
    const gate = gateSyncs();
    const alone = insert('a');
    await gate.whenStarted(1);
    expect(await ids()).toEqual(['a']);
    expect(await synchronous()).toBe(1);
    expect(await settled(alone)).toBe(false);
    gate.releaseAll();
    await alone;

    // A group (asked for in the same turn) shares one COMMIT and one sync.
    const group = Promise.all([insert('b'), insert('c'), insert('d')]);
    await gate.whenStarted(2);
    expect(await ids()).toEqual(['a', 'b', 'c', 'd']);
    expect(await settled(group)).toBe(false);
    gate.releaseAll();
    await group;
    expect(gate.started()).toBe(2);
  });

  it('a transaction that commits while a sync runs waits for the next one', async () => {
    const gate = gateSyncs();
    const first = insert('a');
    await gate.whenStarted(1);
    const second = insert('b');
    await new Promise((r) => setTimeout(r, 20));
    expect(await ids()).toEqual(['a', 'b']);
    gate.releaseAll();
    await first;
    // The running sync may have begun before b's COMMIT: b is answered only after a sync that began after it.
    await gate.whenStarted(2);
    expect(await settled(second)).toBe(false);
    gate.releaseAll();
    await second;
  });

  it('a failed sync fails the transactions waiting for it; the connection goes on', async () => {
    vi.spyOn(proto, 'sync').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const outcomes = await Promise.allSettled([insert('a'), insert('b')]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(String((outcomes[0] as PromiseRejectedResult).reason)).toMatch(/EIO/);
    await insert('c');
    expect(await ids()).toEqual(['a', 'b', 'c']);
  });

  it('every other way a write reaches SQLite is answered only after the sync too', async () => {
    const gate = gateSyncs();
    const admin = t.token('admin', 'admin');
    const writes: Array<[string, () => Promise<unknown>]> = [
      [
        'an ORM flush (createProduct)',
        () => t.gql(`mutation { createProduct(input: { sku: "WAL-1", name: "w", priceAmount: 1, stock: 1 }) { id } }`, {}, admin),
      ],
      ['an ORM transaction with a hand-written statement', () => orm.em.fork().transactional((tx) => Sql.on(tx).run(`insert into wal_probe (id) values ('t')`))],
      ['a statement through the ORM outside a transaction', () => orm.em.getConnection().execute(`insert into wal_probe (id) values ('n')`)],
      ['a hand-written statement outside a transaction', () => Sql.on(orm.em.fork()).run('insert into wal_probe (id) values (?)', ['s'])],
    ];
    for (const [i, [name, write]] of writes.entries()) {
      const answered = write();
      await gate.whenStarted(i + 1);
      expect(await settled(answered), name).toBe(false);
      gate.releaseAll();
      await answered;
    }
    expect(await ids()).toEqual(['n', 's', 't']);
    expect((await t.gql('{ products { sku } }', {}, admin)).data.products.map((p: { sku: string }) => p.sku)).toContain('WAL-1');
    expect(gate.started()).toBe(writes.length);
  });

  it('reads wait for no sync: a read-only transaction sends no COMMIT, ORM reads and pragmas sync nothing', async () => {
    const spy = vi.spyOn(proto, 'sync');
    await Sql.transaction(orm.em, (sql) => sql.rows('select id from wal_probe'));
    await orm.em.fork().transactional((tx) => tx.getConnection().execute('select count(*) from wal_probe', [], 'all', tx.getTransactionContext()));
    await t.gql('{ products { sku } }');
    expect(await synchronous()).toBe(1);
    expect(spy).not.toHaveBeenCalled();
  });
});

describe('WalSync', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orders-walsync-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => vi.restoreAllMocks());

  it('syncs the WAL file now at its path (a new one after SQLite deleted and created it again), or none if it is gone', async () => {
    const db = join(dir, 'a.sqlite3');
    const wal = WalSync.forDatabase(db);
    expect(WalSync.forDatabase(join(dir, '.', 'a.sqlite3'))).toBe(wal);
    const synced: string[] = [];
    vi.mocked(fdatasync).mockImplementation((fd, callback) => {
      synced.push(readlinkSync(`/proc/self/fd/${fd}`));
      callback(null);
    });

    await wal.after();
    expect(synced).toEqual([]);
    writeFileSync(`${db}-wal`, 'frames');
    await wal.after();
    await wal.after();
    rmSync(`${db}-wal`);
    writeFileSync(`${db}-wal`, 'new frames');
    await wal.after();
    expect(synced).toEqual([`${db}-wal`, `${db}-wal`, `${db}-wal`]);
    vi.mocked(fdatasync).mockReset();
  });

  it('callers during a running sync share the next one', async () => {
    const gate = gateSyncs();
    const wal = WalSync.forDatabase(join(dir, 'b.sqlite3'));
    const first = wal.after();
    await gate.whenStarted(1);
    const later = [wal.after(), wal.after(), wal.after()];
    gate.releaseAll();
    await first;
    await gate.whenStarted(2);
    expect(await settled(Promise.all(later))).toBe(false);
    gate.releaseAll();
    await Promise.all(later);
    expect(gate.started()).toBe(2);
  });
});
