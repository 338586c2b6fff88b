import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { sleep, type Ctx } from '../lib/context';
import { REDIS_URL, insertPayingOrders, type Driver, type PayingOrder } from '../lib/db';
import { GqlSocket, subscribeWithSnapshot } from '../lib/gql-ws';
import { CpuMeter } from '../lib/proc';
import { round, summarize, type LatencySummary } from '../lib/stats';
import { insertSwarm, probeOrders, socketSpecs, swarmOrders, tokenFor, withFreshIds } from '../lib/subscribers';
import { Swarm } from '../lib/swarm';
import { startFloor, startService, type MemoryUsage, type Target } from '../lib/targets';

/**
 * The subscription ladder shared by the capacity and fan-out workloads (one swarm growth per target serves both):
 * for each size N the swarm grows to N held idle subscriptions (capacity: subscribes per second, then RSS after GC),
 * then events are PUBLISHed to one probe subscription among the N (fan-out to one of N). At the top, K admin sockets
 * subscribe to one order and each event to it is timed to every one of them (fan-out to many).
 *
 * Fan-out events go straight to the order's Redis channel (`order:<id>`, the topic both the service's Redis bridge
 * and the floor's shared subscriber listen on), in the service's event shape with increasing versions: the database
 * is not involved in delivering them.
 */

export interface CapacityStep {
  size: number;
  sockets: number;
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  procRssMb: number;
  kbPerSub: number;
  heapKbPerSub: number;
  marginalKbPerSub: number;
  subscribesPerSec: number;
  cpuMsPerSubscribe: number;
}

export interface OneOfN {
  size: number;
  latency: LatencySummary;
  missed: number;
}

export interface ToMany {
  subscribers: number;
  idle: number;
  events: number;
  /** Per event: PUBLISH → the last subscriber has it. */
  last: LatencySummary;
  /** Every (event, subscriber) delivery. */
  each: LatencySummary;
  missed: number;
}

export interface LadderResult {
  base: MemoryUsage;
  capacity: CapacityStep[];
  oneOfN: OneOfN[];
  toMany?: ToMany;
}

export interface LadderPlan {
  capacitySizes: number[];
  fanoutSizes: number[];
  eventsPerSize: number;
  eventRate: number;
  manySubscribers: number;
  manyEvents: number;
}

export function ladderPlan(ctx: Ctx): LadderPlan {
  const q = ctx.opts.quick;
  const sizes = ctx.opts.sizes.filter((s) => s > 0);
  return {
    capacitySizes: [...new Set(sizes)].sort((a, b) => a - b),
    fanoutSizes: [...new Set([100, ...sizes])].sort((a, b) => a - b),
    eventsPerSize: q ? 150 : 400,
    eventRate: q ? 150 : 100,
    manySubscribers: q ? 200 : 1000,
    manyEvents: q ? 10 : 20,
  };
}

let version = 1000;

function event(order: PayingOrder, seq: number): string {
  return JSON.stringify({
    orderId: order.orderId,
    orderNo: `seq:${seq}`,
    orderStatus: 'PAYING',
    paymentId: null,
    paymentNo: null,
    paymentStatus: null,
    channel: null,
    totalAmount: order.amount,
    paidAmount: 0,
    refundedAmount: 0,
    occurredAt: new Date().toISOString(),
    version: ++version,
  });
}

/** Events to one probe subscription, open loop at `rate`; latency from the intended PUBLISH time (never earlier than
 * the actual one: timers round down) to the probe socket's receipt. */
async function oneOfN(pub: Redis, socket: GqlSocket, order: PayingOrder, count: number, rate: number): Promise<{ latency: LatencySummary; missed: number }> {
  const sentAt = new Array<number>(count).fill(NaN);
  const gotAt = new Array<number>(count).fill(NaN);
  const { id } = await subscribeWithSnapshot(socket, order.orderId, (e, at) => {
    const seq = Number(String(e.orderNo).slice(4));
    if (seq >= 0 && seq < count && Number.isNaN(gotAt[seq]!)) gotAt[seq] = at;
  });
  await sleep(200);
  const t0 = performance.now() + 10;
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / rate;
    while (performance.now() < due) {
      const wait = due - performance.now();
      await (wait > 2 ? sleep(wait - 1) : new Promise((r) => setImmediate(r)));
    }
    const payload = event(order, i);
    sentAt[i] = due;
    void pub.publish(`order:${order.orderId}`, payload);
  }
  const deadline = performance.now() + 3000;
  while (gotAt.some((t) => Number.isNaN(t)) && performance.now() < deadline) await sleep(10);
  socket.complete(id);
  const lat = gotAt.map((t, i) => t - sentAt[i]!).filter((x) => Number.isFinite(x));
  return { latency: summarize(lat), missed: gotAt.filter((t) => Number.isNaN(t)).length };
}

async function toMany(pub: Redis, swarm: Swarm, target: Target, hot: PayingOrder, subscribers: number, events: number, idle: number): Promise<ToMany> {
  const admin = tokenFor('bench-admin', 'admin');
  // K admin screens, one socket and one subscription each, all on the same order.
  const specs = Array.from({ length: subscribers }, () => ({ token: admin, orderIds: [hot.orderId] }));
  const g = await swarm.grow(target.wsUrl, specs, 64);
  if (g.failedSockets || g.failedSubscriptions) throw new Error(`admin sockets: ${g.failedSockets} sockets / ${g.failedSubscriptions} subscriptions failed: ${g.errors.join('; ')}`);
  await swarm.watch(hot.orderId);
  await sleep(300);
  const published: number[] = [];
  for (let i = 0; i < events; i++) {
    published.push(performance.timeOrigin + performance.now());
    await pub.publish(`order:${hot.orderId}`, event(hot, i));
    await sleep(100);
  }
  await sleep(1500);
  const receipts = await swarm.receipts();
  await swarm.watch(null);
  const bySeq = new Map<number, number[]>();
  for (const [seq, at] of receipts) {
    if (seq < 0 || seq >= events) continue;
    const list = bySeq.get(seq) ?? [];
    list.push(at - published[seq]!);
    bySeq.set(seq, list);
  }
  const each: number[] = [];
  const last: number[] = [];
  let missed = 0;
  for (let i = 0; i < events; i++) {
    const list = bySeq.get(i) ?? [];
    missed += Math.max(0, subscribers - list.length);
    each.push(...list);
    if (list.length) last.push(Math.max(...list));
  }
  return { subscribers, idle, events, last: summarize(last), each: summarize(each), missed };
}

const mb = (b: number) => round(b / 2 ** 20, 1);

/**
 * Before the baseline: `n` subscribes, 64 at a time, each completed once its snapshot arrived, so the baseline is of a
 * process that has served subscriptions (the subscribe path compiled, the database pool opened to its size) and what
 * is measured after it is what held subscriptions keep. The same for the floor and the service.
 */
async function warmSubscribe(socket: GqlSocket, order: PayingOrder, n: number): Promise<void> {
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started++;
      const { id } = await subscribeWithSnapshot(socket, order.orderId, () => {});
      socket.complete(id);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}

/** With BENCH_HEAP_SNAPSHOT_DIR set, a heap snapshot of the target at each capacity step (after its memory reading). */
async function heapSnapshot(target: Target, size: number): Promise<void> {
  const dir = process.env.BENCH_HEAP_SNAPSHOT_DIR;
  if (!dir) return;
  const path = join(resolve(dir), `${target.label.replace('/', '-')}-${size}.heapsnapshot`);
  await target.rpc.call('heapSnapshot', { path }, 300_000);
}

async function climb(ctx: Ctx, target: Target, plan: LadderPlan, want: { capacity: boolean; fanout: boolean }, set: ReturnType<typeof swarmOrders>, probe: PayingOrder, hot: PayingOrder): Promise<LadderResult> {
  const sizes = [...new Set([...(want.capacity ? plan.capacitySizes : []), ...(want.fanout ? plan.fanoutSizes : [])])].sort((a, b) => a - b);
  const pub = new Redis(REDIS_URL, { maxRetriesPerRequest: 2, enableAutoPipelining: true, connectionName: 'bench-fanout-pub' });
  const swarm = Swarm.start(ctx.opts.swarmProcesses);
  const socket = new GqlSocket(target.wsUrl, tokenFor('probe'));
  const result: LadderResult = { base: undefined as unknown as MemoryUsage, capacity: [], oneOfN: [] };
  try {
    await socket.open();
    if (want.fanout) await oneOfN(pub, socket, probe, 60, plan.eventRate); // warm-up
    await warmSubscribe(socket, probe, ctx.opts.quick ? 200 : 1000);
    const settleMs = ctx.opts.quick ? 8000 : 30_000;
    result.base = await target.memory(settleMs);
    await heapSnapshot(target, 0);
    let held = 0;
    let sockets = 0;
    let prev = result.base;
    for (const size of sizes) {
      const meter = new CpuMeter(target.pid);
      const g = await swarm.grow(target.wsUrl, socketSpecs(set, held, size), 64);
      const cpu = meter.stop();
      if (g.failedSockets || g.failedSubscriptions) throw new Error(`swarm: ${g.failedSockets} sockets and ${g.failedSubscriptions} subscriptions failed: ${g.errors.join('; ')}`);
      sockets += g.sockets;
      if (want.capacity && plan.capacitySizes.includes(size)) {
        const m = await target.memory(settleMs);
        await heapSnapshot(target, size);
        const step: CapacityStep = {
          size,
          sockets,
          rssMb: mb(m.rss),
          heapUsedMb: mb(m.heapUsed),
          heapTotalMb: mb(m.heapTotal),
          externalMb: mb(m.external),
          procRssMb: mb(m.procRss),
          kbPerSub: round((m.rss - result.base.rss) / 1024 / size, 2),
          heapKbPerSub: round((m.heapUsed - result.base.heapUsed) / 1024 / size, 2),
          marginalKbPerSub: round((m.rss - prev.rss) / 1024 / (size - held), 2),
          subscribesPerSec: round(g.subscribesPerSec, 0),
          cpuMsPerSubscribe: round(cpu.serverMs / Math.max(1, g.subscriptions), 3),
        };
        result.capacity.push(step);
        prev = m;
        ctx.log(
          `    ${target.label} @ ${size} held on ${sockets} sockets: RSS ${step.rssMb} MB (heap used ${step.heapUsedMb} / total ${step.heapTotalMb} MB; settled in ${m.settledMs} ms), ${step.kbPerSub} KB/sub (heap ${step.heapKbPerSub}), ${step.subscribesPerSec} subscribes/s, ${step.cpuMsPerSubscribe} ms CPU each`,
        );
      }
      held = size;
      if (want.fanout && plan.fanoutSizes.includes(size)) {
        await sleep(500);
        const r = await oneOfN(pub, socket, probe, plan.eventsPerSize, plan.eventRate);
        result.oneOfN.push({ size, ...r });
        ctx.log(`    ${target.label}: event to one of ${size}: p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, missed ${r.missed}`);
      }
    }
    const stats = await swarm.stats();
    if (stats.subscriptions !== held || stats.unexpectedCloses) throw new Error(`swarm holds ${stats.subscriptions} of ${held} (${stats.unexpectedCloses} sockets closed)`);
    if (want.fanout) {
      const m = await toMany(pub, swarm, target, hot, plan.manySubscribers, plan.manyEvents, held);
      result.toMany = m;
      ctx.log(`    ${target.label}: event to ${m.subscribers} subscribers of one order (${held} idle): last p50 ${m.last.p50} ms, p99 ${m.last.p99} ms; each p50 ${m.each.p50} ms; missed ${m.missed}`);
    }
    return result;
  } finally {
    socket.close();
    await swarm.stop();
    await pub.quit().catch(() => undefined);
  }
}

/** Both targets' ladders on fresh databases (floor first, then the service). Cached per driver for the run. */
const cache = new Map<Driver, Promise<Record<'floor' | 'service', LadderResult>>>();

export function runLadder(ctx: Ctx, driver: Driver): Promise<Record<'floor' | 'service', LadderResult>> {
  const want = { capacity: ctx.opts.workloads.includes('capacity'), fanout: ctx.opts.workloads.includes('fanout') };
  let p = cache.get(driver);
  if (!p) {
    p = (async () => {
      const plan = ladderPlan(ctx);
      const maxSize = Math.max(...(want.capacity ? plan.capacitySizes : []), ...(want.fanout ? plan.fanoutSizes : []));
      const base = swarmOrders(maxSize, ctx.opts.subsPerSocket);
      const probeBase = probeOrders(2, 7_000_000);
      const out = {} as Record<'floor' | 'service', LadderResult>;
      for (const kind of ['floor', 'service'] as const) {
        const db = await ctx.dbs.create(driver, `ladder_${kind}`);
        const set = await insertSwarm(db, base);
        const [probe, hot] = withFreshIds(probeBase) as [PayingOrder, PayingOrder];
        await insertPayingOrders(db, [probe, hot]);
        const target = kind === 'floor' ? await startFloor(ctx, db) : await startService(ctx, db);
        try {
          out[kind] = await climb(ctx, target, plan, want, set, probe, hot);
        } finally {
          await target.stop();
          await db.drop();
        }
      }
      return out;
    })();
    cache.set(driver, p);
  }
  return p;
}
