import type { EntityManager } from '@mikro-orm/knex';
import { dueSync, noteWrite, type WalSync } from './wal-sync';

/**
 * Hand-written statements for the hot paths (createOrder, payOrder's bookkeeping, applying a provider result, the
 * subscription snapshot), run on the ORM's own connection and inside its transaction when there is one.
 *
 * Why by hand: the benchmarks (README, "Performance") showed MikroORM's unit of work costing more CPU than the SQL on
 * these paths, re-reading rows it had just read, and sending UPDATEs of unchanged datetime columns on SQLite. Here each
 * step is one explicit statement: conditional updates guarded by the row's version, inserts with exactly the columns
 * the entities define. Everything else keeps using entities. Both databases take the same SQL; the few differences
 * (how a date or a boolean is stored, merging into a JSON column) are the methods below.
 *
 * `?` marks a parameter (bound, never inlined). A Date is stored as epoch milliseconds on SQLite, as MikroORM's
 * entities store it, and as timestamptz on PostgreSQL.
 */
export class Sql {
  readonly dialect: 'sqlite' | 'postgresql';
  private readonly queued: Array<{ sql: string; params: unknown[]; miss?: () => Error }> = [];
  /** A transaction of its own has sent BEGIN (with its first statement). */
  private began = false;
  /** SQLite: the WAL to sync before this transaction's COMMIT is answered (`control`, `synced`). */
  private unsynced: WalSync | null = null;

  /**
   * `connection`: a connection this Sql holds for a transaction of its own (`Sql.transaction`); `began`: that
   * transaction is already open (a member of a SQLite commit group).
   */
  private constructor(
    private readonly em: EntityManager,
    private readonly connection: unknown = null,
    began = false,
  ) {
    this.dialect = dialectOf(em);
    this.began = began;
  }

  /**
   * Whether queued writes (`later`) travel to the database together, so that a transaction of nothing but queued writes
   * is one round trip (PostgreSQL). On SQLite every statement is an in-process call: there a path that reads first so
   * its writes can be queued costs a statement more and saves nothing.
   */
  get batchesWrites(): boolean {
    return this.dialect === 'postgresql';
  }

  /** Statements on the EntityManager's connection: inside its transaction when it is in one, else a pooled one. */
  static on(em: EntityManager): Sql {
    return new Sql(em);
  }

  /**
   * Runs `work` in one transaction of hand-written statements: BEGIN and COMMIT (ROLLBACK when `work` throws) go
   * straight to the driver on a connection taken from the ORM's pool for the duration. Written by hand because knex's
   * transaction machinery (a transactor object per transaction, its query runner for BEGIN and COMMIT) cost more CPU
   * than the statements of a payment callback (README, "Performance"). `work` gets only this Sql, never an
   * EntityManager: an ORM call inside would run outside the transaction (PostgreSQL) or wait for the one connection
   * this transaction holds (SQLite).
   *
   * BEGIN is sent with the first statement. On PostgreSQL a transaction that is nothing but queued writes (`later`)
   * is sent as that one statement, without BEGIN and COMMIT: a single statement is atomic on its own, and its
   * writes' `miss` checks run inside it, so a miss undoes every write of it (see `flush`). Every round trip to
   * PostgreSQL is a system call on each side, and on these machines system calls dominate (README, "Performance").
   *
   * On SQLite, transactions asked for in the same turn of the event loop commit together (group commit, see
   * `commitGroup`): each runs alone, one after another, in one shared transaction, and each caller's promise settles
   * only once that transaction has committed and its WAL is synced off the event loop (wal-sync.ts), or failed: then
   * every member fails, nothing of any is kept. A member that throws is undone alone (see `together`) and fails alone.
   */
  static async transaction<T>(em: EntityManager, work: (sql: Sql) => Promise<T>): Promise<T> {
    if (dialectOf(em) === 'postgresql') return Sql.alone(em, work);
    const client = knexClient(em);
    return new Promise<T>((resolve, reject) => {
      let waiting = Sql.commitGroups.get(client);
      if (!waiting) {
        Sql.commitGroups.set(client, (waiting = []));
        setImmediate(() => void Sql.commitGroup(client));
      }
      waiting.push({ em, work, resolve, reject } as GroupMember<unknown>);
    });
  }

  /**
   * Group commit on SQLite (`Sql.transaction`). better-sqlite3 runs every statement synchronously on the one
   * connection, so transactions never overlap; what they cost is COMMIT: each writes every page it changed to the WAL
   * (23 pages for a payment callback: payment, order, history, inbox and outbox rows and their indexes), and the
   * WAL is copied back at each checkpoint. Transactions asked for in the same turn of the event loop (several callbacks
   * or orders that arrived together) share one COMMIT, in which pages they all touch (the tail of every table and
   * index) are written once: 5.4 pages per callback in groups of 8, measured (README, "Performance"). The sync that
   * makes a COMMIT durable runs on the thread pool (`control`, wal-sync.ts), so the next group can run meanwhile.
   *
   * Latency: a transaction waits for the end of the current turn (`setImmediate`), nothing more; one asked for alone
   * runs as before, without savepoints. PostgreSQL needs none of this: its connections commit in parallel.
   */
  private static readonly commitGroups = new WeakMap<object, Array<GroupMember<unknown>>>();

  private static async commitGroup(client: object): Promise<void> {
    const members = Sql.commitGroups.get(client)!;
    Sql.commitGroups.delete(client);
    if (members.length === 1) {
      const [m] = members;
      return Sql.alone(m!.em, m!.work).then(m!.resolve, m!.reject);
    }
    // `together` settles every member itself; only taking the connection can fail here, and that fails them all.
    const outcomes = await Sql.together(members).catch((error: unknown) => members.map((): Settled => ({ ok: false, error })));
    members.forEach((m, i) => {
      const o = outcomes[i]!;
      if (o.ok) m.resolve(o.value);
      else m.reject(o.error);
    });
  }

  /** One transaction on a connection of its own (`transaction`). */
  private static async alone<T>(em: EntityManager, work: (sql: Sql) => Promise<T>): Promise<T> {
    const client = knexClient(em);
    const connection = await client.acquireConnection();
    const sql = new Sql(em, connection);
    let out: T;
    try {
      out = await work(sql);
      if (!sql.began && sql.dialect === 'postgresql') {
        await sql.flush(true);
      } else {
        await sql.flush();
        if (sql.began) await sql.control('commit');
      }
    } catch (err) {
      // After a failed COMMIT there is nothing left to roll back; the first error is the one that matters.
      if (sql.began) await sql.control('rollback').catch(() => undefined);
      throw err;
    } finally {
      await client.releaseConnection(connection);
    }
    await sql.synced();
    return out;
  }

  /**
   * A SQLite commit group's transactions as one (`commitGroup`): BEGIN, each member's work in turn, one COMMIT. A
   * member that throws is undone alone: rolled back to the savepoint taken before it, or, while no member before it
   * has succeeded (nothing else to keep), by rolling the whole transaction back and beginning again for the rest; so
   * the leading members need no savepoint, and the last one no RELEASE (COMMIT releases it). A failed BEGIN or COMMIT
   * fails every member, and nothing of any is kept. Answers each member's outcome once COMMIT is done.
   */
  private static async together(members: ReadonlyArray<GroupMember<unknown>>): Promise<Settled[]> {
    const client = knexClient(members[0]!.em);
    const connection = await client.acquireConnection();
    const outcomes: Settled[] = [];
    const shared = new Sql(members[0]!.em, connection);
    let open = false;
    // Work of an earlier member to keep: the next one runs inside a savepoint.
    let keeping = false;
    try {
      await shared.control('begin');
      open = true;
      for (const [i, m] of members.entries()) {
        const last = i === members.length - 1;
        const sql = new Sql(m.em, connection, true);
        if (keeping) await sql.control('savepoint grouped');
        try {
          const value = await m.work(sql);
          await sql.flush();
          if (keeping && !last) await sql.control('release grouped');
          outcomes.push({ ok: true, value });
          keeping = true;
        } catch (error) {
          // Undoing this member only; if even that fails, the catch below ends them all.
          if (keeping) {
            await sql.control('rollback to grouped');
            if (!last) await sql.control('release grouped');
          } else {
            await shared.control('rollback');
            open = false;
            if (!last) {
              await shared.control('begin');
              open = true;
            }
          }
          outcomes.push({ ok: false, error });
        }
      }
      if (open) await shared.control('commit');
    } catch (error) {
      if (open) await shared.control('rollback').catch(() => undefined);
      return members.map((_m, i) => (outcomes[i]?.ok === false ? outcomes[i]! : { ok: false, error }));
    } finally {
      await client.releaseConnection(connection);
    }
    try {
      await shared.synced();
    } catch (error) {
      return outcomes.map((o) => (o.ok ? { ok: false, error } : o));
    }
    return outcomes;
  }

  /**
   * BEGIN, COMMIT and the savepoints of a transaction of its own. On a SQLite file in WAL mode, what COMMIT wrote is
   * synced afterwards off the event loop (`synced`, see wal-sync.ts); a transaction that only read waits for nothing.
   */
  private async control(statement: Control): Promise<void> {
    try {
      if (this.dialect === 'postgresql') {
        await (this.connection as PgConnection).query(statement);
        return;
      }
      const db = this.connection as SqliteConnection;
      sqliteStatement(db, statement).run([]);
      if (statement === 'commit') this.unsynced = dueSync(db);
    } catch (err) {
      throw this.em.getDriver().convertException(err as Error);
    }
  }

  /** Answers once what this transaction committed is on disk (SQLite: its WAL synced; PostgreSQL: at COMMIT already). */
  private async synced(): Promise<void> {
    const wal = this.unsynced;
    this.unsynced = null;
    if (wal) await wal.after();
  }

  async rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    await this.flush();
    return (await this.execute(sql, params, 'all')) as T[];
  }

  async one<T>(sql: string, params: unknown[] = []): Promise<T | null> {
    return (await this.rows<T>(sql, params))[0] ?? null;
  }

  /** Runs a write; answers the number of rows it changed. */
  async run(sql: string, params: unknown[] = []): Promise<number> {
    await this.flush();
    return (await this.execute(sql, params, 'run')) as number;
  }

  /**
   * Straight to the driver on the connection MikroORM/knex holds for this transaction (or one borrowed from its pool
   * and given back): bound parameters, SQLite statements prepared once per connection, PostgreSQL statements named so
   * each connection parses and plans them once. Written by hand because every statement through the ORM's `execute`
   * is inlined into a new SQL string (prepared and planned afresh) and passes knex's query runner, which together
   * cost more CPU than the statement itself on these paths (README, "Performance"). Driver errors are mapped to
   * MikroORM's exceptions, so a duplicate key is still a UniqueConstraintViolationException. In a transaction of
   * its own, the first statement sends BEGIN first, unless `begin` is false: the one statement of a transaction sent
   * alone (see `flush`).
   */
  private async execute(sql: string, params: unknown[], method: 'all' | 'run', begin = true): Promise<unknown[] | number> {
    const ctx = this.connection ? null : this.em.getTransactionContext<{ client: KnexClient }>();
    const client = this.connection ? null : ctx ? ctx.client : knexClient(this.em);
    const connection = this.connection ?? (await client!.acquireConnection());
    let autocommitted: WalSync | null = null;
    if (this.connection && !this.began && begin) {
      this.began = true;
      await this.control('begin');
    }
    try {
      if (this.dialect === 'sqlite') {
        const statement = sqliteStatement(connection as SqliteConnection, sql);
        if (!statement.readonly) noteWrite(connection as object);
        const values = params.map(sqliteValue);
        const out = method === 'all' ? statement.all(values) : statement.run(values).changes;
        // A write on a pooled connection committed itself: answered once it is on disk (wal-sync.ts).
        if (client && !ctx) autocommitted = dueSync(connection as object);
        return out;
      }
      const res = await (connection as PgConnection).query({ name: pgName(sql), text: pgText(sql), values: params.map(pgValue) });
      return method === 'all' ? res.rows : (res.rowCount ?? 0);
    } catch (err) {
      throw this.em.getDriver().convertException(err as Error);
    } finally {
      if (client && !ctx) await client.releaseConnection(connection);
      await autocommitted?.after();
    }
  }

  /**
   * Queues a write whose answer nobody waits for (an insert, a guarded update) in this Sql's transaction. Queued
   * writes go to the database together, before the next read or write and at the latest before COMMIT: on
   * PostgreSQL as one statement (each write a data-modifying WITH clause: one round trip, one parse, instead of one
   * each), on SQLite one after another (in-process calls, nothing to save). `miss`: the write must change exactly one
   * row, otherwise the transaction fails with that error (a version-guarded update: OptimisticLockError, so the
   * caller retries on fresh data). Outside `Sql.transaction` the write is sent at once.
   *
   * The writes of one batch must not touch the same row, and none may depend on another's effect: on PostgreSQL they
   * all see the snapshot the statement started with (foreign keys are checked at its end).
   */
  async later(sql: string, params: unknown[], miss?: () => Error): Promise<void> {
    this.queued.push({ sql, params, miss });
    // Outside a transaction of its own (an ORM transaction, or none) there is no COMMIT to wait for: send it now.
    if (!this.connection) await this.flush();
  }

  /**
   * Sends the queued writes (see `later`). `alone`: they are all the transaction has (PostgreSQL, nothing sent yet),
   * so they go as one statement outside BEGIN/COMMIT, which checks its own misses: a guarded write that did not change
   * exactly one row makes the statement fail (a text cast to integer that cannot succeed, naming the write), and a
   * failed statement leaves nothing behind. The check is a CASE on the write's row count, evaluated only when the
   * count is wrong; the text includes the count, so it is no constant PostgreSQL could fold (and fail) at planning.
   */
  private async flush(alone = false): Promise<void> {
    if (!this.queued.length) return;
    const batch = this.queued.splice(0);
    let changed: number[];
    if (this.dialect === 'sqlite' || (batch.length === 1 && !(alone && batch[0]!.miss))) {
      changed = [];
      for (const w of batch) changed.push((await this.execute(w.sql, w.params, 'run', !alone)) as number);
    } else {
      const checks = alone
        ? batch.flatMap((w, i) => (w.miss ? [`case when w${i} <> 1 then ('${MISSED}' || ${i} || ' changed ' || w${i})::int end`] : []))
        : [];
      let row: Record<string, unknown> | undefined;
      try {
        [row] = (await this.execute(
          `with ${batch.map((w, i) => `w${i} as (${w.sql} returning 1)`).join(', ')},
             counts as (select ${batch.map((_w, i) => `(select count(*) from w${i}) as w${i}`).join(', ')})
           select *${checks.map((c) => `, ${c}`).join('')} from counts`,
          batch.flatMap((w) => w.params),
          'all',
          !alone,
        )) as Array<Record<string, unknown>>;
      } catch (err) {
        const missed = new RegExp(`${MISSED}(\\d+)`).exec((err as Error).message);
        if (missed) throw batch[Number(missed[1])]!.miss!();
        throw err;
      }
      changed = batch.map((_w, i) => readInt(row![`w${i}`]));
    }
    const missed = batch.findIndex((w, i) => w.miss && changed[i] !== 1);
    if (missed >= 0) throw batch[missed]!.miss!();
  }

  bool(b: boolean): boolean | number {
    return this.dialect === 'sqlite' ? (b ? 1 : 0) : b;
  }

  json(v: unknown): string | null {
    return v === null || v === undefined ? null : JSON.stringify(v);
  }

  /** SQL setting `key` of a JSON object column to a JSON parameter (`?`), keeping its other keys. */
  jsonSetKey(column: string, key: string): string {
    return this.dialect === 'sqlite'
      ? `json_set(coalesce(${column}, '{}'), '$.${key}', json(?))`
      : `jsonb_set(coalesce(${column}, '{}'::jsonb), '{${key}}', ?::jsonb)`;
  }
}

interface GroupMember<T> {
  em: EntityManager;
  work: (sql: Sql) => Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

type Control = 'begin' | 'commit' | 'rollback' | 'savepoint grouped' | 'release grouped' | 'rollback to grouped';

function dialectOf(em: EntityManager): 'sqlite' | 'postgresql' {
  return em.getPlatform().constructor.name.toLowerCase().includes('postgre') ? 'postgresql' : 'sqlite';
}

/** Marks the error a batch sent alone raises when one of its guarded writes missed (see `flush`). */
const MISSED = 'missed guarded write #';

/** Reads an integer column (PostgreSQL's bigint/count come back as strings). */
export function readInt(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

/** Reads a datetime column (epoch milliseconds on SQLite, a Date from PostgreSQL). */
export function readDate(v: unknown): Date | null {
  return v == null ? null : v instanceof Date ? v : new Date(Number(v));
}

// ─── the drivers underneath ────────────────────────────────────────────────────────────────────────────────────

interface KnexClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown>;
}

function knexClient(em: EntityManager): KnexClient {
  return em.getConnection().getKnex().client as KnexClient;
}

interface SqliteStatement {
  readonly readonly: boolean;
  all(values: unknown[]): unknown[];
  run(values: unknown[]): { changes: number };
}

interface SqliteConnection {
  prepare(sql: string): SqliteStatement;
}

interface PgConnection {
  query(q: { name: string; text: string; values: unknown[] } | string): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** Prepared statements per SQLite connection (one per distinct SQL text; the hot paths have a few dozen). */
const sqliteStatements = new WeakMap<object, Map<string, SqliteStatement>>();

function sqliteStatement(db: SqliteConnection, sql: string): SqliteStatement {
  let cache = sqliteStatements.get(db);
  if (!cache) sqliteStatements.set(db, (cache = new Map()));
  let statement = cache.get(sql);
  if (!statement) cache.set(sql, (statement = db.prepare(sql)));
  return statement;
}

function sqliteValue(v: unknown): unknown {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v === undefined ? null : v;
}

function pgValue(v: unknown): unknown {
  return v === undefined ? null : v;
}

/** PostgreSQL's `$n` placeholders and a statement name per distinct SQL text. */
const pgTexts = new Map<string, { name: string; text: string }>();

function pgEntry(sql: string): { name: string; text: string } {
  let entry = pgTexts.get(sql);
  if (!entry) {
    let n = 0;
    entry = { name: `hot_${pgTexts.size + 1}`, text: sql.replace(/\?/g, () => `$${++n}`) };
    pgTexts.set(sql, entry);
  }
  return entry;
}

const pgName = (sql: string): string => pgEntry(sql).name;
const pgText = (sql: string): string => pgEntry(sql).text;
