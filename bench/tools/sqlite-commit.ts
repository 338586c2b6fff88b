/**
 * `node dist/bench/tools/sqlite-commit.js [auto|worker|none] [intervalMs] [backstopPages] [perGroup] [gapMs] [seconds]`:
 * how long a group commit holds the event loop on SQLite, and what WAL checkpoints add to it. better-sqlite3 alone
 * (no service): transactions like createOrder's (4 rows with three indexes, one row of another table), `perGroup` of
 * them per BEGIN/COMMIT, one group every `gapMs`, with `synchronous = NORMAL` as the service's connections commit
 * (src/shared/db/wal-sync.ts). Checkpoints:
 * - `auto`: SQLite's own, inside COMMIT once the WAL passes `backstopPages` (default 1 000, SQLite's default);
 * - `worker`: a worker thread with its own connection runs `wal_checkpoint(PASSIVE)` every `intervalMs`, and the
 *   serving connection's own stays as a backstop at `backstopPages`;
 * - `none`: never (the WAL grows without bound; the cost of COMMIT alone).
 * Prints the group's time (mean, p50, p99, max) and, for `worker`, how often it caught up and how often the WAL
 * restarted from its beginning. README ("Performance") has what it showed; the worker variant is not in the service.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { openSqlite } from '../lib/db';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('synchronous = full');
const checkpoint = db.prepare('pragma wal_checkpoint(passive)');
let passes = 0, caughtUp = 0, restarts = 0, maxPages = 0, previous = 0;
setInterval(() => {
  const r = checkpoint.get();
  passes++;
  if (r.log === r.checkpointed) caughtUp++;
  if (r.log < previous) restarts++;
  previous = r.log;
  maxPages = Math.max(maxPages, r.log);
  parentPort.postMessage({ passes, caughtUp, restarts, maxPages });
}, workerData.intervalMs);
`;

function main(): void {
  const [mode = 'auto', interval = '10', backstop = '1000', perGroup = '3', gapMs = '4', seconds = '15'] = process.argv.slice(2);
  const dir = mkdtempSync(join(tmpdir(), 'sqlite-commit-'));
  const file = join(dir, 'bench.sqlite3');
  const db = openSqlite(file);
  db.pragma('synchronous = normal');
  db.pragma(`wal_autocheckpoint = ${mode === 'none' ? 0 : Number(backstop)}`);
  db.exec(`create table t (id text primary key, a text, b integer, c text); create index t_a on t (a); create index t_b on t (b);
           create table u (id text primary key, x text)`);
  let stats: Record<string, number> = {};
  const worker =
    mode === 'worker'
      ? new Worker(WORKER, { eval: true, workerData: { driver: require.resolve('better-sqlite3'), file, intervalMs: Number(interval) } })
      : null;
  worker?.on('message', (m: Record<string, number>) => (stats = m));

  const insert = db.prepare('insert into t values (?, ?, ?, ?)');
  const insertOther = db.prepare('insert into u values (?, ?)');
  const begin = db.prepare('begin');
  const commit = db.prepare('commit');
  const times: number[] = [];
  const until = Date.now() + Number(seconds) * 1000;
  let n = 0;
  const group = (): void => {
    const start = process.hrtime.bigint();
    begin.run();
    for (let j = 0; j < Number(perGroup); j++, n++) {
      for (let k = 0; k < 4; k++) insert.run(randomUUID(), randomUUID(), n, 'x'.repeat(200));
      insertOther.run(randomUUID(), 'y'.repeat(300));
    }
    commit.run();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (Date.now() < until) setTimeout(group, Number(gapMs));
    else void finish();
  };
  const finish = async (): Promise<void> => {
    await worker?.terminate();
    db.close();
    rmSync(dir, { recursive: true, force: true });
    times.sort((a, b) => a - b);
    const q = (p: number) => times[Math.floor(p * (times.length - 1))]!.toFixed(3);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    console.log(
      `${process.argv.slice(2).join(' ') || 'auto'}: ${times.length} groups of ${perGroup}; group ms mean ${mean.toFixed(3)}, ` +
        `p50 ${q(0.5)}, p99 ${q(0.99)}, max ${q(1)}${worker ? `; worker ${JSON.stringify(stats)}` : ''}`,
    );
  };
  group();
}

main();
