import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Orm } from '../../src/shared/db/orm';
import { Sql } from '../../src/shared/db/sql';
import { startTestApp, type Db, type TestApp } from '../helpers/app';

/**
 * Sql.transaction and Sql.later (src/shared/db/sql.ts): queued writes are all-or-nothing whether they go inside
 * BEGIN/COMMIT or, on PostgreSQL, alone as one statement; a guarded write that misses fails the transaction with the
 * caller's error; and the connection goes back to the pool with no transaction left open. On SQLite, transactions
 * asked for together share one COMMIT (group commit): each still stands or falls alone, except when that COMMIT fails.
 */
const databases: Db[] = inject('postgres') ? ['sqlite', 'postgresql'] : ['sqlite'];

class Missed extends Error {}

describe.each(databases)('hand-written transactions on %s', (db) => {
  let t: TestApp;
  let orm: Orm;

  beforeAll(async () => {
    t = await startTestApp(db);
    orm = t.app.services.orm;
    await orm.em.getConnection().execute('create table probe (id varchar(10) primary key, n integer not null)');
    await orm.em
      .getConnection()
      .execute('create table probe_child (id varchar(10) primary key, probe_id varchar(10) references probe (id) deferrable initially deferred)');
  });
  afterAll(async () => t?.close());
  beforeEach(async () => {
    await orm.em.getConnection().execute('delete from probe_child');
    await orm.em.getConnection().execute('delete from probe');
    await orm.em.getConnection().execute(`insert into probe (id, n) values ('a', 1)`);
  });

  const rows = async () => Sql.on(orm.em.fork()).rows<{ id: string; n: number }>('select id, n from probe order by id');
  const bump = (sql: Sql, expectN: number) =>
    sql.later(`update probe set n = n + 1 where id = 'a' and n = ?`, [expectN], () => new Missed('a changed concurrently'));

  it('writes alone (no read): all applied together', async () => {
    await Sql.transaction(orm.em, async (sql) => {
      await bump(sql, 1);
      await sql.later(`insert into probe (id, n) values (?, ?)`, ['b', 7]);
    });
    expect(await rows()).toEqual([{ id: 'a', n: 2 }, { id: 'b', n: 7 }]);
  });

  it('writes alone with a guard that misses: the caller\'s error, and the other write is not kept', async () => {
    const attempt = Sql.transaction(orm.em, async (sql) => {
      await sql.later(`insert into probe (id, n) values (?, ?)`, ['b', 7]);
      await bump(sql, 5);
      await sql.later(`insert into probe (id, n) values (?, ?)`, ['c', 8]);
    });
    await expect(attempt).rejects.toBeInstanceOf(Missed);
    expect(await rows()).toEqual([{ id: 'a', n: 1 }]);
  });

  it('after a read (inside BEGIN): a miss rolls back the writes queued and sent before it', async () => {
    const attempt = Sql.transaction(orm.em, async (sql) => {
      await sql.later(`insert into probe (id, n) values (?, ?)`, ['b', 7]);
      const [a] = await sql.rows<{ n: number }>(`select n from probe where id = 'a'`);
      await bump(sql, Number(a!.n) + 10);
    });
    await expect(attempt).rejects.toBeInstanceOf(Missed);
    expect(await rows()).toEqual([{ id: 'a', n: 1 }]);
  });

  it('a failing write (duplicate key) undoes the batch; connections come back with no transaction open', async () => {
    for (let i = 0; i < 25; i++) {
      const attempt = Sql.transaction(orm.em, async (sql) => {
        await bump(sql, 1);
        await sql.later(`insert into probe (id, n) values (?, ?)`, ['a', 9]);
      });
      await expect(attempt).rejects.toThrow();
    }
    expect(await rows()).toEqual([{ id: 'a', n: 1 }]);
    // Every pooled connection (more than the pool holds were used above) sees committed changes made elsewhere: none
    // is stuck inside a transaction that was never committed.
    await Promise.all(Array.from({ length: 25 }, (_, i) => Sql.transaction(orm.em, (sql) => sql.later('insert into probe (id, n) values (?, ?)', [`p${i}`, i]))));
    const seen = await Promise.all(Array.from({ length: 25 }, () => Sql.on(orm.em.fork()).one<{ c: unknown }>('select count(*) as c from probe')));
    expect(seen.map((r) => Number(r!.c))).toEqual(Array(25).fill(26));
  });

  const insert = (sql: Sql, id: string, n: number) => sql.later('insert into probe (id, n) values (?, ?)', [id, n]);

  it('transactions asked for together: the one that fails is undone alone, the others are kept', async () => {
    const outcomes = await Promise.allSettled([
      Sql.transaction(orm.em, (sql) => insert(sql, 'b', 2)),
      Sql.transaction(orm.em, async (sql) => {
        await insert(sql, 'c', 3);
        await bump(sql, 41);
      }),
      Sql.transaction(orm.em, async (sql) => {
        await insert(sql, 'd', 4);
        await insert(sql, 'a', 9);
      }),
      Sql.transaction(orm.em, async (sql) => {
        const [a] = await sql.rows<{ n: number }>(`select n from probe where id = 'a'`);
        await bump(sql, Number(a!.n));
        return 'bumped';
      }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(Missed);
    expect((outcomes[3] as PromiseFulfilledResult<string>).value).toBe('bumped');
    expect(await rows()).toEqual([{ id: 'a', n: 2 }, { id: 'b', n: 2 }]);
  });

  it('together, failing before any has succeeded and failing last: each undone alone, every write of it', async () => {
    const failing = (id: string, n: number) => async (sql: Sql) => {
      await insert(sql, id, n);
      await bump(sql, 41);
    };
    const outcomes = await Promise.allSettled([
      Sql.transaction(orm.em, failing('b', 2)),
      Sql.transaction(orm.em, failing('c', 3)),
      Sql.transaction(orm.em, (sql) => insert(sql, 'd', 4)),
      Sql.transaction(orm.em, failing('e', 5)),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'fulfilled', 'rejected']);
    expect(outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason)).toEqual([
      expect.any(Missed),
      expect.any(Missed),
      expect.any(Missed),
    ]);
    expect(await rows()).toEqual([{ id: 'a', n: 1 }, { id: 'd', n: 4 }]);

    const allFailed = await Promise.allSettled([Sql.transaction(orm.em, failing('f', 6)), Sql.transaction(orm.em, failing('g', 7))]);
    expect(allFailed.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(await rows()).toEqual([{ id: 'a', n: 1 }, { id: 'd', n: 4 }]);
    // No transaction left open: the next ones commit and are seen.
    await Promise.all([Sql.transaction(orm.em, (sql) => insert(sql, 'h', 8)), Sql.transaction(orm.em, (sql) => insert(sql, 'i', 9))]);
    expect((await rows()).map((r) => r.id)).toEqual(['a', 'd', 'h', 'i']);
  });

  it('a burst of 75 transactions asked for at once: all commit, each once', async () => {
    const ids = Array.from({ length: 75 }, (_, i) => `b${i}`);
    await Promise.all(ids.map((id, i) => Sql.transaction(orm.em, (sql) => insert(sql, id, i))));
    const got = await rows();
    expect(got).toHaveLength(76);
    expect(new Set(got.map((r) => r.id))).toEqual(new Set(['a', ...ids]));
  });

  it('a COMMIT that fails keeps nothing of the transactions that shared it (SQLite: all of them; PostgreSQL: its own)', async () => {
    const outcomes = await Promise.allSettled([
      Sql.transaction(orm.em, (sql) => insert(sql, 'b', 2)),
      // A deferred foreign key is checked at COMMIT: this row's parent does not exist.
      Sql.transaction(orm.em, (sql) => sql.later('insert into probe_child (id, probe_id) values (?, ?)', ['x', 'nobody'])),
      Sql.transaction(orm.em, (sql) => insert(sql, 'c', 3)),
    ]);
    if (db === 'sqlite') {
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(await rows()).toEqual([{ id: 'a', n: 1 }]);
    } else {
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(await rows()).toEqual([{ id: 'a', n: 1 }, { id: 'b', n: 2 }, { id: 'c', n: 3 }]);
    }
    // The connection is back with no transaction open: a later transaction commits and is seen.
    await Sql.transaction(orm.em, (sql) => insert(sql, 'e', 5));
    expect((await rows()).map((r) => r.id)).toContain('e');
  });
});
