import { createServer } from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import type { BenchDb } from './db';
import { REDIS_URL } from './db';
import { spawnNode, type Rpc } from './rpc';
import { processRssBytes } from './proc';
import { wechatEnv, type SimulatorHandle, type WechatSetup } from './wechat';

/**
 * The two kinds of process a workload measures, started the same way: `node --expose-gc -r process-probe.js <entry>`
 * as a separate process on 127.0.0.1, with an IPC channel for the probe (memory after GC, SQL counters).
 * - service: `dist/src/main.js`, configured as test/helpers/process.ts does (NODE_ENV=production).
 * - floor: `dist/bench/floors/server.js`, the bare node:http + ws + plain-driver server.
 */

export const JWT_SECRET = 'bench-jwt-secret-0123456789abcdef';
export const PROBE = resolve(__dirname, 'process-probe.js');
/**
 * The service's entry: `dist/src/main.js`, or `<BENCH_SERVICE_DIR>/dist/src/main.js` (another build, for an A/B of a
 * change; run.ts also points it at a snapshot of dist/ taken when the run starts, so a rebuild by someone else in the
 * same tree during a run cannot change the service under test).
 */
export function serviceMain(): string {
  const dir = process.env.BENCH_SERVICE_DIR;
  return dir ? resolve(dir, 'dist/src/main.js') : resolve(__dirname, '../../src/main.js');
}
export const FLOOR_MAIN = resolve(__dirname, '../floors/server.js');

export type TargetKind = 'floor' | 'service';

export interface MemoryUsage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  gc: boolean;
  /** How long it took RSS to stop falling. */
  settledMs: number;
  /** VmRSS read from /proc right after the GC, for comparison. */
  procRss: number;
}

export interface SqlCounters {
  total: number;
  byKind: Record<string, number>;
}

export interface Target {
  kind: TargetKind;
  db: BenchDb;
  label: string;
  url: string;
  wsUrl: string;
  pid: number;
  rpc: Rpc;
  /** RSS after GC once settled (process-probe.ts), at most `settleMs` of waiting. */
  memory(settleMs?: number): Promise<MemoryUsage>;
  sql(): Promise<SqlCounters>;
  sqlTrace(on: boolean): Promise<string[]>;
  /** The process's event-loop delay (ms) since the last reset (process-probe.ts); `reset` starts a new window. */
  loopDelay(reset?: boolean): Promise<LoopDelay>;
  stop(): Promise<number | null>;
}

/** How long ready work waited for the event loop: a tail here is the process's own (CPU, GC, a blocking call). */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export interface BenchContext {
  runId: string;
  wechat: WechatSetup;
  sim: SimulatorHandle;
  quick: boolean;
}

/** BENCH_PROFILE_DIR=dir: the processes write V8 CPU profiles there when they stop (for finding causes). */
export function cpuProfileArgs(kind: string): string[] {
  const dir = process.env.BENCH_PROFILE_DIR;
  return dir ? ['--cpu-prof', '--cpu-prof-dir', resolve(dir), '--cpu-prof-name', `${kind}-${Date.now()}.cpuprofile`] : [];
}

function profileArgs(kind: TargetKind): string[] {
  // BENCH_NODE_ARGS: more node flags for the service and floor (e.g. --trace-gc), for diagnosis.
  const extra = process.env.BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  return [...extra, ...cpuProfileArgs(kind)];
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

async function waitReady(url: string, rpc: Rpc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!rpc.alive) throw new Error(`${rpc.label} exited during start:\n${rpc.tail()}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await rpc.stop(1000);
      throw new Error(`${rpc.label} not ready after ${timeoutMs} ms:\n${rpc.tail()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function wrap(kind: TargetKind, db: BenchDb, rpc: Rpc, url: string): Target {
  return {
    kind,
    db,
    label: `${kind}/${db.driver}`,
    url,
    wsUrl: url.replace(/^http/, 'ws') + '/graphql',
    pid: rpc.pid,
    rpc,
    memory: async (settleMs = 8000) => {
      const m = await rpc.call<Omit<MemoryUsage, 'procRss'>>('memory', { settleMs }, 60_000);
      return { ...m, procRss: processRssBytes(rpc.pid) };
    },
    sql: () => rpc.call<SqlCounters>('sql'),
    sqlTrace: (on) => rpc.call<string[]>('sqlTrace', { on }),
    loopDelay: (reset = false) => rpc.call<LoopDelay>('loopDelay', { reset }),
    stop: async () => {
      const code = await rpc.stop(15_000);
      return code;
    },
  };
}

export interface ServiceOptions {
  countSql?: boolean;
  env?: Record<string, string>;
}

export async function startService(ctx: BenchContext, db: BenchDb, options: ServiceOptions = {}): Promise<Target> {
  const port = await freePort();
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    DATA_DIR: join(os.tmpdir(), `bench-${ctx.runId}`, 'service-data'),
    DATABASE_URL: db.url,
    REDIS_URL,
    JWT_SECRET,
    PAYMENT_SIMULATOR: 'off',
    SEED_DEMO: 'false',
    RATE_LIMIT_PER_MINUTE: '1000000',
    PAYMENT_QUERY_DELAYS: '86400',
    PAYMENT_TIMEOUT_SECONDS: '86400',
    ...ctx.sim.env,
    ...(options.countSql ? { BENCH_COUNT_SQL: '1' } : {}),
    ...options.env,
  };
  // BENCH_SERVICE_NODE_ARGS: extra Node/V8 flags for the service only (experiments such as `--max-semi-space-size=32`).
  const extra = process.env.BENCH_SERVICE_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  const rpc = spawnNode(serviceMain(), `service/${db.driver}`, env, ['--expose-gc', ...extra, ...profileArgs('service'), '-r', PROBE]);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, rpc, 60_000);
  return wrap('service', db, rpc, url);
}

export async function startFloor(ctx: BenchContext, db: BenchDb, options: { countSql?: boolean } = {}): Promise<Target> {
  const port = await freePort();
  const env: Record<string, string> = {
    PORT: String(port),
    DATABASE_URL: db.url,
    REDIS_URL,
    JWT_SECRET,
    ...wechatEnv(ctx.wechat, ctx.sim.baseUrl),
    ...(options.countSql ? { BENCH_COUNT_SQL: '1' } : {}),
  };
  const rpc = spawnNode(FLOOR_MAIN, `floor/${db.driver}`, env, ['--expose-gc', ...profileArgs('floor'), '-r', PROBE]);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, rpc, 30_000);
  return wrap('floor', db, rpc, url);
}
