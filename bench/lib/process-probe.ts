/**
 * Preloaded (`node --expose-gc -r dist/bench/lib/process-probe.js …`) into the service and the floor servers by the
 * bench, never by `npm start`. It changes nothing in the process it is loaded into; it answers the bench over the IPC
 * channel:
 *
 * - `memory`: runs a full garbage collection (twice, so weak references and finalizers settle) and answers
 *   `process.memoryUsage()`; the bench reports RSS after GC from this.
 * - `sql` / `sqlTrace`: with BENCH_COUNT_SQL=1, every statement the process sends through the database drivers
 *   (`pg` Client.query, better-sqlite3 statement executions, BEGIN/COMMIT included)
 *   is counted by kind; `sqlTrace` records the statements' text between two calls.
 */
import type { Rpc } from './rpc';

type Counters = { total: number; byKind: Record<string, number> };

const counters: Counters = { total: 0, byKind: {} };
let trace: string[] | null = null;

function kindOf(sql: string): string {
  const m = /^\s*(\w+)/.exec(sql);
  const word = (m?.[1] ?? '?').toLowerCase();
  if (word === 'savepoint' || word === 'release') return 'savepoint';
  return word;
}

function count(sql: string): void {
  counters.total++;
  const kind = kindOf(sql);
  counters.byKind[kind] = (counters.byKind[kind] ?? 0) + 1;
  if (trace && trace.length < 10_000) trace.push(sql.replace(/\s+/g, ' ').slice(0, 240));
}

if (process.env.BENCH_COUNT_SQL === '1') {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pg = require('pg') as { Client: { prototype: { query: (...args: unknown[]) => unknown } } };
    const original = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
      const config = args[0] as string | { text?: string } | undefined;
      const text = typeof config === 'string' ? config : config?.text;
      if (typeof text === 'string') count(text);
      return original.apply(this, args);
    };
  } catch {
    /* pg not used here */
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Database = require('better-sqlite3') as { prototype: { prepare: (sql: string) => unknown } };
    const original = Database.prototype.prepare;
    // Executions are counted, not prepares: knex prepares every statement it runs, while the service's hand-written
    // statements (src/shared/db/sql.ts) are prepared once and run many times.
    let patched = false;
    Database.prototype.prepare = function (this: unknown, sql: string) {
      const statement = original.call(this, sql) as object;
      if (!patched) {
        patched = true;
        const proto = Object.getPrototypeOf(statement) as Record<string, (...args: unknown[]) => unknown>;
        for (const method of ['run', 'all', 'get', 'iterate']) {
          const run = proto[method]!;
          proto[method] = function (this: { source: string }, ...args: unknown[]) {
            count(this.source);
            return run.apply(this, args);
          };
        }
      }
      return statement;
    };
  } catch {
    /* better-sqlite3 not used here */
  }
}

// Event-loop delay (how long ready work waited for the loop), for telling queueing on a busy loop from slow I/O.
// eslint-disable-next-line @typescript-eslint/no-require-imports
// The histogram holds the time between the sampling timer's runs, its 10 ms interval included: `loopDelay` answers
// the delay beyond it.
const LOOP_RESOLUTION_MS = 10;
const loopDelay = (require('node:perf_hooks') as typeof import('node:perf_hooks')).monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loopDelay.enable();

if (process.send) {
  process.on('message', (m: { rpc?: number; method?: string; params?: unknown }) => {
    if (!m || typeof m.rpc !== 'number') return;
    let result: unknown;
    let error: string | undefined;
    try {
      switch (m.method) {
        case 'memory': {
          // RSS after GC once settled. A full GC, then wait (without forcing more GCs, which would keep postponing it)
          // until V8's memory reducer has run — it shrinks the young generation back to its minimum and compacts a
          // fragmented old generation a few seconds after the process goes idle — or `settleMs` passed; then a last
          // full GC and a pause, as V8 hands freed pages back to the OS from a background thread.
          const v8 = require('node:v8') as typeof import('node:v8'); // eslint-disable-line @typescript-eslint/no-require-imports
          const gc = (globalThis as { gc?: (o?: unknown) => void }).gc;
          const settleMs = Number((m.params as { settleMs?: number })?.settleMs ?? 10_000);
          const started = Date.now();
          const newSpace = () => v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.space_size ?? 0;
          gc?.();
          const finish = () => {
            gc?.();
            setTimeout(() => {
              const spaces = v8.getHeapSpaceStatistics().map((x) => ({ space: x.space_name, size: x.space_size, used: x.space_used_size }));
              process.send!({ rpc: m.rpc, result: { ...process.memoryUsage(), gc: Boolean(gc), settledMs: Date.now() - started, spaces } });
            }, 700);
          };
          // Then until the old generation is compacted (the reducer works in steps a few seconds apart): at most 5 %
          // (or 4 MB) of its pages' space unused.
          const poll = () => {
            if (Date.now() - started >= settleMs) return finish();
            const space = (name: string) => v8.getHeapSpaceStatistics().find((x) => x.space_name === name);
            const old = space('old_space');
            const slack = old ? old.space_size - old.space_used_size : 0;
            if (newSpace() <= 4 * 2 ** 20 && slack <= Math.max(4 * 2 ** 20, 0.05 * (old?.space_used_size ?? 0))) return finish();
            setTimeout(poll, 500);
          };
          setTimeout(poll, 250);
          return;
        }
        case 'sql':
          result = { total: counters.total, byKind: { ...counters.byKind } };
          break;
        case 'sqlTrace':
          if ((m.params as { on?: boolean })?.on) {
            trace = [];
            result = [];
          } else {
            result = trace ?? [];
            trace = null;
          }
          break;
        case 'heapSnapshot': {
          // For finding what a held subscription retains (bench/tools/heap-diff.ts compares two of them).
          const gc = (globalThis as { gc?: () => void }).gc;
          gc?.();
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          result = (require('node:v8') as typeof import('node:v8')).writeHeapSnapshot(String((m.params as { path?: string })?.path ?? ''));
          break;
        }
        case 'loopDelay': {
          const ms = (ns: number) => Math.max(0, Math.round(ns / 1e4 - LOOP_RESOLUTION_MS * 100) / 100);
          result = { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max), mean: ms(loopDelay.mean) };
          if ((m.params as { reset?: boolean })?.reset) loopDelay.reset();
          break;
        }
        case 'ping':
          result = 'pong';
          break;
        default:
          error = `unknown method ${String(m.method)}`;
      }
    } catch (err) {
      error = String(err);
    }
    process.send!({ rpc: m.rpc, result, error });
  });
  // Never keep the process alive for the bench's sake: its own shutdown decides when it exits. If the bench goes
  // away (killed), the process is asked to stop as the bench would have done, so nothing is left running.
  (process as unknown as { channel?: { unref(): void } }).channel?.unref();
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

export type ProcessProbe = Rpc;
