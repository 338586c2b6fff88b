/**
 * `npm run bench [-- options]`: measures what the service exists for, each result beside the bare floor the same
 * machine reaches for the same job, and writes bench-results/<stamp>.json and .md (see bench/README.md).
 *
 *   --workloads createOrder,callback,screen,capacity,fanout,flow   (default: all)
 *   --db sqlite,postgresql                                        (default: both)
 *   --sizes 1000,10000,50000     held subscriptions for screen / capacity / fanout
 *   --duration 10                seconds per measured phase
 *   --repeat 3                   max-throughput trials per target (median reported)
 *   --concurrency 16,64          customers in the whole-flow workload
 *   --subs-per-socket 50         subscriptions multiplexed on one swarm socket
 *   --swarm-processes 3          client processes holding the swarm
 *   --quick                      small sizes and short phases (under ~3 minutes)
 *   --out bench-results          where the JSON and markdown go
 *   --update-readme              also write the table into bench/README.md ("Latest results")
 */
import 'reflect-metadata';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { WORKLOADS, type Ctx, type Options, type TargetCheck, type Workload, type WorkloadResult } from './lib/context';
import { DbFactory, PG_ADMIN_URL, REDIS_URL, type Driver } from './lib/db';
import { machineInfo, measureIdle } from './lib/proc';
import { markdown, terminalTable } from './lib/report';
import { createWechatSetup, startSimulator } from './lib/wechat';
import { runCallback } from './workloads/callback';
import { runCapacity } from './workloads/capacity';
import { runCreateOrder } from './workloads/create-order';
import { runFanout } from './workloads/fanout';
import { runFlow } from './workloads/flow';
import { runScreen } from './workloads/screen';

const USAGE = `npm run bench -- [--workloads createOrder,callback,screen,capacity,fanout,flow] [--db sqlite,postgresql]
  [--sizes 1000,10000,50000] [--duration 10] [--repeat 3] [--concurrency 16,64] [--subs-per-socket 50]
  [--swarm-processes 3] [--quick] [--out bench-results] [--update-readme]`;

function parseArgs(argv: string[]): Options {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [key, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (inline !== undefined) args.set(key, inline);
    else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) args.set(key, argv[++i]!);
    else args.set(key, 'true');
  }
  const known = ['workloads', 'db', 'sizes', 'duration', 'repeat', 'concurrency', 'subs-per-socket', 'swarm-processes', 'quick', 'out', 'update-readme', 'help'];
  for (const k of args.keys()) if (!known.includes(k)) throw new Error(`unknown option --${k} (known: ${known.map((x) => '--' + x).join(' ')})`);
  if (args.has('help')) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = args.get('quick') === 'true';
  const list = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
  const nums = (v: string | undefined) => list(v)?.map((s) => {
    const n = Number(s.replace(/_/g, ''));
    if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${s}`);
    return n;
  });
  const workloads = (list(args.get('workloads')) ?? [...WORKLOADS]).map((w) => {
    const match = WORKLOADS.find((x) => x.toLowerCase() === w.toLowerCase());
    if (!match) throw new Error(`unknown workload ${w} (${WORKLOADS.join(', ')})`);
    return match;
  });
  const dbs = (list(args.get('db')) ?? ['sqlite', 'postgresql']).map((d) => {
    const v = d.toLowerCase() === 'pg' || d.toLowerCase() === 'postgres' ? 'postgresql' : d.toLowerCase();
    if (v !== 'sqlite' && v !== 'postgresql') throw new Error(`unknown database ${d}`);
    return v as Driver;
  });
  return {
    workloads,
    dbs,
    quick,
    durationSec: Number(args.get('duration') ?? (quick ? 1 : 10)),
    sizes: nums(args.get('sizes')) ?? (quick ? [1000] : [1000, 10000, 50000]),
    repeat: Number(args.get('repeat') ?? (quick ? 1 : 3)),
    concurrency: nums(args.get('concurrency')) ?? [16, 64],
    subsPerSocket: Number(args.get('subs-per-socket') ?? 50),
    swarmProcesses: Number(args.get('swarm-processes') ?? 3),
    outDir: resolve(args.get('out') ?? 'bench-results'),
    updateReadme: args.get('update-readme') === 'true',
  };
}

const RUNNERS: Record<Workload, (ctx: Ctx, driver: Driver) => Promise<WorkloadResult>> = {
  createOrder: runCreateOrder,
  callback: runCallback,
  screen: runScreen,
  capacity: runCapacity,
  fanout: runFanout,
  flow: runFlow,
};

async function serverVersions(): Promise<{ postgres?: string; redis?: string }> {
  const out: { postgres?: string; redis?: string } = {};
  try {
    const c = new Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    out.postgres = String((await c.query('show server_version')).rows[0]?.server_version ?? '').split(' ')[0];
    await c.end();
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable at ${PG_ADMIN_URL}: ${(err as Error).message}`);
  }
  try {
    const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await r.connect();
    out.redis = /redis_version:(\S+)/.exec(await r.info('server'))?.[1];
    await r.quit();
  } catch (err) {
    throw new Error(`Redis is not reachable at ${REDIS_URL}: ${(err as Error).message}`);
  }
  return out;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const t0 = performance.now();
  const runId = `${startedAt.toISOString().slice(0, 19).replace(/\D/g, '')}_${process.pid}`;
  const log = (m: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);

  const machine = machineInfo();
  Object.assign(machine, await serverVersions());
  machine.idleBefore = await measureIdle(1000);
  log(`machine: ${machine.cores} × ${machine.cpuModel}; CPU idle ${Math.round(machine.idleBefore * 100)} % before start; load ${machine.loadavgBefore?.join(' ')}`);
  if (machine.idleBefore < 0.8) log('warning: the machine is busy with other work; results move by 10 % or more (stack.md)');

  // The service under test is a snapshot of dist/ (src + migrations) taken now: others rebuild dist/ in this tree
  // while a run goes on. Kept inside the checkout so node_modules resolves as from dist/.
  let snapshot: string | undefined;
  if (!process.env.BENCH_SERVICE_DIR) {
    snapshot = resolve(__dirname, `../../bench-results/.service-${runId}`);
    for (const part of ['src', 'migrations']) cpSync(resolve(__dirname, `../${part}`), join(snapshot, 'dist', part), { recursive: true });
    process.env.BENCH_SERVICE_DIR = snapshot;
  }
  log(`service under test: ${process.env.BENCH_SERVICE_DIR}/dist/src/main.js`);

  const dbs = new DbFactory(runId);
  const wechat = createWechatSetup();
  const sim = await startSimulator(wechat);
  const ctx: Ctx = { runId, wechat, sim, quick: opts.quick, opts, dbs, floorCreateOrderMax: {}, serviceCreateOrderMax: {}, log };

  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupted: cleaning up (again to force)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results: WorkloadResult[] = [];
  try {
    for (const driver of opts.dbs) await dbs.template(driver);
    for (const workload of opts.workloads) {
      for (const driver of opts.dbs) {
        if (interrupted) break;
        // --quick: the held-subscription ladder (capacity, fan-out) runs on one database only, PostgreSQL when
        // selected (the realtime path does not touch the database beyond each subscribe's reads).
        const ladderDb = opts.dbs.includes('postgresql') ? 'postgresql' : opts.dbs[0];
        if (opts.quick && (workload === 'capacity' || workload === 'fanout') && driver !== ladderDb) {
          log(`${workload} on ${driver}: skipped in --quick (runs on ${ladderDb})`);
          continue;
        }
        log(`${workload} on ${driver}`);
        const started = performance.now();
        try {
          const r = await RUNNERS[workload](ctx, driver);
          results.push(r);
        } catch (err) {
          log(`  ${workload} on ${driver} failed: ${(err as Error).stack ?? err}`);
          results.push({ workload, db: driver, rows: [], checks: [], details: {}, error: String((err as Error).message ?? err) });
        }
        log(`  ${workload} on ${driver} took ${((performance.now() - started) / 1000).toFixed(1)} s`);
      }
    }
  } finally {
    await sim.stop().catch(() => undefined);
    await dbs.cleanup().catch((err) => log(`cleanup failed: ${err}`));
    if (snapshot && existsSync(snapshot)) rmSync(snapshot, { recursive: true, force: true });
  }

  const elapsedSec = (performance.now() - t0) / 1000;
  const checks: TargetCheck[] = results.flatMap((r) =>
    r.error ? [{ workload: r.workload, db: r.db, name: `${r.workload} ran`, target: 'completes', measured: r.error.split('\n')[0]!.slice(0, 200), met: false }] : r.checks,
  );
  const md = markdown(results, checks, machine, opts, startedAt, elapsedSec);
  mkdirSync(opts.outDir, { recursive: true });
  const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '-');
  const json = { startedAt: startedAt.toISOString(), elapsedSec, machine, options: opts, results, checks };
  writeFileSync(join(opts.outDir, `${stamp}.json`), JSON.stringify(json, null, 2));
  writeFileSync(join(opts.outDir, `${stamp}.md`), md + '\n');
  writeFileSync(join(opts.outDir, 'latest.json'), JSON.stringify(json, null, 2));
  writeFileSync(join(opts.outDir, 'latest.md'), md + '\n');
  // Only a complete run replaces the README's table (an interrupted or failed one is still written to --out).
  if (opts.updateReadme && (interrupted || results.some((r) => r.error))) log('bench/README.md left as it was: the run did not complete');
  else if (opts.updateReadme) updateReadme(md);

  console.log('');
  console.log(terminalTable(results, checks));
  console.log('');
  console.log(`wrote ${join(opts.outDir, `${stamp}.json`)} and .md (${Math.round(elapsedSec)} s)`);
  process.exit(results.some((r) => r.error) ? 1 : 0);
}

/** Replaces the table between the markers in bench/README.md. */
function updateReadme(md: string): void {
  const path = resolve(__dirname, '../../bench/README.md');
  const text = readFileSync(path, 'utf8');
  const begin = '<!-- bench:latest:begin -->';
  const end = '<!-- bench:latest:end -->';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`bench/README.md lacks the ${begin} … ${end} markers`);
  writeFileSync(path, `${text.slice(0, i + begin.length)}\n${md}\n${text.slice(j)}`);
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
