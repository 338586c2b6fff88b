import { closeSync, fdatasync, fstatSync, openSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * SQLite's COMMIT sync, off the event loop, for every write to a SQLite file.
 *
 * better-sqlite3 is synchronous: with `synchronous = FULL` every COMMIT waits for the disk (fdatasync of the WAL) on
 * the event loop, and nothing else runs meanwhile. A CPU profile of the callback workload had a third of the
 * service's busy time in COMMIT (this sync and SQLite's automatic checkpoints; README, "Performance"). So every
 * connection to a file in WAL mode runs with `synchronous = NORMAL` (WAL frames written, not synced; consistent after
 * a crash, by SQLite's design), and whatever leaves it outside a transaction after a write (a COMMIT, or a single
 * statement that committed itself) syncs the WAL file on libuv's thread pool and only then answers its caller: what
 * is answered is on disk, as with FULL. The two ways statements reach a connection both do this: the hot paths'
 * hand-written statements (`Sql`, sql.ts) and everything through MikroORM/knex (`syncKnexWrites`: flushes, ORM
 * transactions, native updates, migrations). Callers that commit while a sync is running share the next one (the
 * group commit idea again); a transaction that only read waits for nothing.
 *
 * What changes: another request may read a change whose sync is still running (a window of one fdatasync) and act on
 * it; if the power fails in that window both are lost together, since the WAL is sequential and a later transaction
 * can only survive with every earlier one. Nothing answered is lost.
 *
 * Syncing the WAL is enough: in WAL mode a COMMIT writes only the WAL; the database file changes at checkpoints, which
 * sync the WAL before and the database file after, in NORMAL as in FULL (https://sqlite.org/pragma.html#pragma_synchronous).
 */
export class WalSync {
  private running: Promise<void> | null = null;
  private waiting: Promise<void> | null = null;
  /** The WAL file, kept open between syncs (`descriptor`). */
  private fd: number | null = null;
  private static readonly byFile = new Map<string, WalSync>();

  private constructor(readonly walFile: string) {}

  /** One per database file for the life of the process (a service opens one; its descriptor stays open). */
  static forDatabase(databaseFile: string): WalSync {
    const walFile = `${resolve(databaseFile)}-wal`;
    let sync = WalSync.byFile.get(walFile);
    if (!sync) WalSync.byFile.set(walFile, (sync = new WalSync(walFile)));
    return sync;
  }

  /** Resolves once a sync of the WAL that started after this call has completed (rejects if it failed). */
  after(): Promise<void> {
    if (!this.running) {
      this.running = this.sync().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    // A sync is already running; it may have started before our COMMIT, so wait for the next one, shared with
    // everyone else who commits meanwhile.
    this.waiting ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.waiting = null;
        return this.after();
      });
    return this.waiting;
  }

  /**
   * fdatasync of the WAL on the thread pool: one hop, on a descriptor kept open. Before each sync the descriptor's file
   * is checked to be still linked (one fstat on the loop), so a WAL that SQLite deleted and created again (its last
   * connection closed) is never mistaken for the current one: the file at the WAL's path is opened instead.
   */
  private async sync(): Promise<void> {
    const fd = this.descriptor();
    if (fd === null) return;
    await new Promise<void>((done, fail) => fdatasync(fd, (err) => (err ? fail(err) : done())));
  }

  private descriptor(): number | null {
    // The file held open was deleted (the last connection closed, checkpointed everything and removed it): look again.
    if (this.fd !== null && fstatSync(this.fd).nlink === 0) this.closeDescriptor();
    if (this.fd === null) {
      try {
        this.fd = openSync(this.walFile, 'r');
      } catch (err) {
        // No WAL file: nothing written since it was removed, nothing to sync.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        return null;
      }
    }
    return this.fd;
  }

  private closeDescriptor(): void {
    // Never closed while a sync runs on it: `descriptor` is only called when none is running (`after`).
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

const walOf = new WeakMap<object, WalSync>();

/** Connections that wrote since their last sync was asked for (`noteWrite`, `dueSync`). */
const written = new WeakSet<object>();

interface SqliteDb {
  name: string;
  memory: boolean;
  readonly inTransaction: boolean;
  prepare(source: string): { readonly readonly: boolean };
}

/**
 * Called for every SQLite connection as it opens (ORM pool `afterCreate`), after `journal_mode = wal`. A file
 * database in WAL mode gets a WalSync, and every statement prepared on it that may write marks it written (knex
 * prepares each statement just before it runs it; `Sql` marks its cached ones as it runs them). Answers whether the
 * connection's COMMITs are synced here (then it can run with `synchronous = NORMAL`); an in-memory database (no file
 * to sync) or one not in WAL mode is not, and keeps syncing in COMMIT.
 */
export function registerSqliteConnection(db: SqliteDb, journalMode: unknown): boolean {
  if (db.memory || String(journalMode).toLowerCase() !== 'wal') return false;
  walOf.set(db, WalSync.forDatabase(db.name));
  const prepare = db.prepare;
  db.prepare = function (this: SqliteDb, source: string) {
    const statement = prepare.call(this, source);
    if (!statement.readonly) written.add(this);
    return statement;
  };
  return true;
}

/** A statement that may write is about to run on `db` (better-sqlite3's `readonly` is false). */
export function noteWrite(db: object): void {
  written.add(db);
}

/**
 * After a statement on `db`: the WAL to sync before answering, when `db` is now outside a transaction and wrote since
 * the last time this answered (a COMMIT, or a write that committed itself); null otherwise. Consumes the mark, so
 * call `after()` on the answer.
 */
export function dueSync(db: object): WalSync | null {
  const wal = walOf.get(db);
  if (!wal || (db as SqliteDb).inTransaction || !written.has(db)) return null;
  written.delete(db);
  return wal;
}

/**
 * Every statement MikroORM sends through knex on a SQLite connection answers only once what it committed is synced
 * (`dueSync`). Wraps the dialect's `_query` (the one place knex runs a statement on a connection) on its prototype,
 * because knex runs a transaction's statements on a client it makes afresh from that prototype, and because neither
 * MikroORM nor knex has a hook after COMMIT that can hold the answer (MikroORM's `afterTransactionCommit` misses
 * writes outside a transaction: native updates, migrations). Connections without a WalSync (in-memory) are untouched.
 * The connection stays held meanwhile, as it was during COMMIT's own sync under FULL, but the event loop runs on.
 */
export function syncKnexWrites(dialect: { prototype: object }): void {
  // `_query` is knex's, untyped in MikroORM's dialect class.
  const proto = dialect.prototype as KnexDialect;
  if (wrapped.has(proto)) return;
  wrapped.add(proto);
  const query = proto._query;
  proto._query = async function (this: KnexDialect, connection: unknown, obj: unknown) {
    const out = await query.call(this, connection, obj);
    await dueSync(connection as object)?.after();
    return out;
  };
}

interface KnexDialect {
  _query(connection: unknown, obj: unknown): Promise<unknown>;
}

const wrapped = new WeakSet<object>();
