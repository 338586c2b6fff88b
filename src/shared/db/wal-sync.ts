import { closeSync, fdatasync, fstatSync, openSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * COMMIT's sync off the event loop, for the hot paths' SQLite transactions (`Sql.transaction`).
 *
 * better-sqlite3 is synchronous: with `synchronous = FULL` every COMMIT waits for the disk (fdatasync of the WAL) on
 * the event loop, and nothing else runs meanwhile. A CPU profile of the callback workload had a third of the
 * service's busy time in COMMIT (this sync and SQLite's automatic checkpoints; README, "Performance"). So `Sql.transaction` commits with `synchronous = NORMAL` (WAL
 * frames written, not synced; consistent after a crash, by SQLite's design) and then syncs the WAL file itself on
 * libuv's thread pool, and only then answers its callers: what is answered is on disk, as with FULL. Transactions
 * that commit while a sync is running share the next one (the group commit idea again).
 *
 * What changes: another request may read a change whose sync is still running (a window of one fdatasync) and act on
 * it; if the power fails in that window both are lost together, since the WAL is sequential and a later transaction
 * can only survive with every earlier one. Nothing answered is lost. Every other path (ORM transactions, migrations,
 * single statements) keeps FULL: the connection is set back to FULL right after each such COMMIT.
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

  /** The WAL of a SQLite connection in WAL mode (`registerSqliteConnection`), or null: then COMMIT keeps FULL. */
  static of(connection: object): WalSync | null {
    return walOf.get(connection) ?? null;
  }

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
   * fdatasync of the WAL on the thread pool: one hop, on a descriptor kept open. Before each sync the descriptor is
   * checked against the file now at the WAL's path (two system calls on the loop, microseconds), so a WAL that SQLite
   * deleted and created again (its last connection closed) is never mistaken for the current one.
   */
  private async sync(): Promise<void> {
    const fd = this.descriptor();
    if (fd === null) return;
    await new Promise<void>((done, fail) => fdatasync(fd, (err) => (err ? fail(err) : done())));
  }

  private descriptor(): number | null {
    let current;
    try {
      current = statSync(this.walFile);
    } catch (err) {
      // No WAL file: the last connection closed, checkpointed (synced) everything and deleted it.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.closeDescriptor();
      return null;
    }
    if (this.fd !== null && fstatSync(this.fd).ino !== current.ino) this.closeDescriptor();
    this.fd ??= openSync(this.walFile, 'r');
    return this.fd;
  }

  private closeDescriptor(): void {
    // Never closed while a sync runs on it: `descriptor` is only called when none is running (`after`).
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

const walOf = new WeakMap<object, WalSync>();

/**
 * Called for every SQLite connection as it opens (ORM pool `afterCreate`), after `journal_mode = wal`: a file
 * database in WAL mode gets a WalSync; an in-memory one (no file to sync) does not.
 */
export function registerSqliteConnection(db: { name: string; memory: boolean }, journalMode: unknown): void {
  if (!db.memory && String(journalMode).toLowerCase() === 'wal') walOf.set(db, WalSync.forDatabase(db.name));
}
