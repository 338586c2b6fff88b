import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Orm } from '../../src/shared/db/orm';
import { Sql } from '../../src/shared/db/sql';
import { startTestApp, type Db, type TestApp } from '../helpers/app';

/**
 * Sql.transaction and Sql.later (src/shared/db/sql.ts): queued writes are all-or-nothing whether they go inside
 * BEGIN/COMMIT or, on PostgreSQL, alone as one statement; a guarded write that misses fails the transaction with the
 * caller's error; and the connection goes back to the pool with no transaction left open.
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
  });
  afterAll(async () => t?.close());
  beforeEach(async () => {
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
});
