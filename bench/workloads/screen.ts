import { join } from 'node:path';
import { sleep, type Ctx, type Row, type TargetCheck, type WorkloadResult } from '../lib/context';
import { insertPayingOrders, type Driver, type PayingOrder } from '../lib/db';
import { GqlSocket, subscribeWithSnapshot } from '../lib/gql-ws';
import { openLoop } from '../lib/open-loop';
import { createOrderRequest, customerTokens } from '../lib/requests';
import { forkHelper } from '../lib/rpc';
import { round, summarize, type LatencySummary } from '../lib/stats';
import { insertSwarm, probeOrders, socketSpecs, swarmOrders, tokenFor, withFreshIds } from '../lib/subscribers';
import { Swarm } from '../lib/swarm';
import { startFloor, startService, type Target } from '../lib/targets';
import { paymentNotification, type SignedNotification } from '../lib/wechat';
import { notifyRequest } from './callback';
import { floorCreateOrderMax, serviceCreateOrderMax } from './create-order';

/**
 * Callback → screen: the time from sending a (signed, encrypted) WeChat Pay callback to the checkout screen's socket
 * receiving PAID, with 0 … 50 000 idle subscriptions held by the client swarm, while createOrder runs in the
 * background at 30 % of the floor's maximum createOrder throughput (a separate load process).
 *
 * The probe (this process) is one raw graphql-transport-ws socket of customer `probe` subscribed to its PAYING orders;
 * callbacks are sent open loop at a modest rate and each latency is measured from the callback's intended send time.
 * Floor: the callback floor plus one shared Redis subscriber writing a pre-serialized string to a raw `ws` socket.
 */

const BACKGROUND_FRACTION = 0.3;

interface SizeResult {
  size: number;
  held: number;
  screen: LatencySummary;
  reply: LatencySummary;
  missed: number;
  notSent: number;
  failedReplies: number;
  probes: number;
  background: { rate: number; achievedRate: number; p99: number; failed: number };
}

async function ladder(
  ctx: Ctx,
  target: Target,
  sizes: number[],
  swarm: Swarm,
  swarmSet: ReturnType<typeof swarmOrders>,
  probes: PayingOrder[][],
  backgroundRate: number,
): Promise<SizeResult[]> {
  const q = ctx.opts.quick;
  const probeRate = q ? 50 : 20;
  const out: SizeResult[] = [];
  const socket = new GqlSocket(target.wsUrl, tokenFor('probe'));
  await socket.open();
  const load = forkHelper(join(__dirname, '../lib/load-process.js'), 'background-load');
  let held = 0;
  try {
    for (let s = 0; s < sizes.length; s++) {
      const size = sizes[s]!;
      if (size > held) {
        const g = await swarm.grow(target.wsUrl, socketSpecs(swarmSet, held, size), 64);
        if (g.failedSockets || g.failedSubscriptions) throw new Error(`swarm: ${g.failedSockets} sockets and ${g.failedSubscriptions} subscriptions failed: ${g.errors.join('; ')}`);
        held = size;
        ctx.log(`    ${target.label}: ${g.subscriptions} more idle subscriptions on ${g.sockets} sockets (${Math.round(g.subscribesPerSec)}/s)`);
      }
      // The probe's orders for this size: subscribed first (snapshot PAYING), then paid one by one.
      const orders = probes[s]!;
      const index = new Map(orders.map((o, i) => [o.orderId, i]));
      const paidAt = new Array<number>(orders.length).fill(NaN);
      const subIds: string[] = [];
      for (const o of orders) {
        const { id } = await subscribeWithSnapshot(socket, o.orderId, (e, at) => {
          const i = index.get(e.orderId);
          if (i !== undefined && e.orderStatus === 'PAID' && Number.isNaN(paidAt[i]!)) paidAt[i] = at;
        });
        subIds.push(id);
      }
      const notifications: SignedNotification[] = orders.map((o) => paymentNotification(ctx.wechat, o.paymentNo, o.amount));
      const probeMs = (orders.length / probeRate) * 1000;
      await sleep(300);
      const background = load.call<{ rate: number; achievedRate: number; latency: LatencySummary; unexpected: number; errors: number; timeouts: number; dropped: number }>(
        'run',
        { url: target.url, rate: backgroundRate, durationMs: probeMs + 2000, tag: `bg-${target.kind}-${size}-${ctx.runId}`, customers: 200 },
      );
      await sleep(700);
      const intended = new Array<number>(orders.length).fill(NaN);
      const reply = await openLoop({
        url: target.url,
        rate: probeRate,
        durationMs: probeMs,
        next: (i) => notifyRequest(notifications[i]!),
        onDispatch: (i, at) => (intended[i] = at),
      });
      // Stragglers: wait up to 5 s for every PAID.
      const deadline = performance.now() + 5000;
      while (paidAt.some((t, i) => Number.isNaN(t) && !Number.isNaN(intended[i]!)) && performance.now() < deadline) await sleep(20);
      const bg = await background;
      const latencies = paidAt.map((t, i) => t - intended[i]!).filter((x) => Number.isFinite(x));
      // Missed: the callback was sent but PAID never reached the screen. Callbacks not sent because the service was
      // already a second behind (saturated) or answered with an error are counted apart.
      const notSent = reply.dropped;
      const failedReplies = reply.unexpected + reply.errors + reply.timeouts;
      const missed = Math.max(0, intended.filter((t, i) => !Number.isNaN(t) && Number.isNaN(paidAt[i]!)).length - notSent - failedReplies);
      for (const id of subIds) socket.complete(id);
      const r: SizeResult = {
        size,
        held,
        screen: summarize(latencies),
        reply: summarize(reply.latencies),
        missed,
        notSent,
        failedReplies,
        probes: orders.length,
        background: {
          rate: round(backgroundRate, 1),
          achievedRate: round(bg.achievedRate, 1),
          p99: bg.latency.p99,
          failed: bg.unexpected + bg.errors + bg.timeouts + bg.dropped,
        },
      };
      ctx.log(
        `    ${target.label} @ ${size} held: screen p50 ${r.screen.p50} ms, p99 ${r.screen.p99} ms (reply p50 ${r.reply.p50} ms), missed ${r.missed}/${r.probes} (failed ${r.failedReplies}, not sent ${r.notSent}); background ${r.background.achievedRate}/s of ${r.background.rate}/s (p99 ${r.background.p99} ms, failed ${r.background.failed})`,
      );
      out.push(r);
    }
  } finally {
    socket.close();
    await load.stop();
  }
  return out;
}

export async function runScreen(ctx: Ctx, driver: Driver): Promise<WorkloadResult> {
  const sizes = [0, ...ctx.opts.sizes.filter((s) => s > 0)].sort((a, b) => a - b);
  const maxSize = sizes[sizes.length - 1]!;
  const probeCount = ctx.opts.quick ? 40 : 200;
  const base = swarmOrders(maxSize, ctx.opts.subsPerSocket);
  const probeBase = sizes.map((_, s) => probeOrders(probeCount, 8_000_000 + s * 10_000));
  // createOrder in the background at 30 % of the floor's maximum — unless that is more than the service can take:
  // then half the service's own maximum, or the callbacks would only measure its createOrder queue (reported).
  const floorMax = await floorCreateOrderMax(ctx, driver);
  const serviceMax = await serviceCreateOrderMax(ctx, driver);
  const intendedRate = BACKGROUND_FRACTION * floorMax;
  const backgroundRate = Math.min(intendedRate, 0.5 * serviceMax);
  if (backgroundRate < intendedRate) {
    ctx.log(`  background createOrder: 30 % of the floor's ${floorMax}/s is ${round(intendedRate, 1)}/s, above the service's maximum ${serviceMax}/s; using ${round(backgroundRate, 1)}/s (half the service's maximum) for both`);
  }
  const results: Record<'floor' | 'service', SizeResult[]> = { floor: [], service: [] };

  for (const kind of ['floor', 'service'] as const) {
    const db = await ctx.dbs.create(driver, `screen_${kind}`);
    const swarmSet = await insertSwarm(db, base);
    const probes = probeBase.map(withFreshIds);
    await insertPayingOrders(db, probes.flat());
    const target = kind === 'floor' ? await startFloor(ctx, db) : await startService(ctx, db);
    const swarm = Swarm.start(ctx.opts.swarmProcesses);
    try {
      // Warm-up: callbacks on orders of their own and createOrder at the background rate, so the first measured
      // probes do not pay for JIT compilation.
      const warmOrders = withFreshIds(probeOrders(60, 8_900_000, 'warm'));
      await insertPayingOrders(db, warmOrders);
      const tokens = customerTokens(50, `warm-${ctx.runId}-`);
      await Promise.all([
        openLoop({
          url: target.url,
          rate: 50,
          durationMs: 1200,
          next: (i) => notifyRequest(paymentNotification(ctx.wechat, warmOrders[i % warmOrders.length]!.paymentNo, warmOrders[i % warmOrders.length]!.amount)),
        }),
        openLoop({ url: target.url, rate: backgroundRate, durationMs: ctx.opts.quick ? 1000 : 3000, next: (i) => createOrderRequest(tokens, `warm-${target.kind}-${ctx.runId}`, i) }),
      ]);
      results[kind] = await ladder(ctx, target, sizes, swarm, swarmSet, probes, backgroundRate);
      const stats = await swarm.stats();
      if (stats.unexpectedCloses) throw new Error(`${stats.unexpectedCloses} swarm sockets closed unexpectedly`);
    } finally {
      await swarm.stop();
      await target.stop();
      await db.drop();
    }
  }

  const rows: Row[] = [];
  const checks: TargetCheck[] = [];
  sizes.forEach((size, i) => {
    const f = results.floor[i]!;
    const s = results.service[i]!;
    for (const pct of ['p50', 'p99'] as const) {
      rows.push({
        metric: `callback → PAID on screen ${pct}, ${size.toLocaleString('en-US')} idle subs`,
        unit: 'ms',
        floor: f.screen[pct],
        service: s.screen[pct],
        ratio: round(s.screen[pct] - f.screen[pct]),
        ratioKind: 'service-floor',
        note:
          pct === 'p99'
            ? `callback reply p50 ${f.reply.p50}/${s.reply.p50} ms; missed ${f.missed}/${s.missed} of ${s.probes}${s.notSent + s.failedReplies + f.notSent + f.failedReplies ? ` (failed or not sent, saturated: ${f.failedReplies + f.notSent}/${s.failedReplies + s.notSent})` : ''}; background createOrder ${f.background.achievedRate}/${s.background.achievedRate} of ${s.background.rate}/s${backgroundRate < intendedRate ? ` (capped: 30 % of floor max would be ${round(intendedRate, 1)}/s)` : ''}`
            : undefined,
      });
    }
  });
  const at = sizes.includes(10_000) ? 10_000 : sizes.filter((x) => x <= 10_000).pop() ?? sizes[0]!;
  const fi = results.floor[sizes.indexOf(at)]!;
  const si = results.service[sizes.indexOf(at)]!;
  const missedAll = results.service.reduce((a, r) => a + r.missed, 0);
  checks.push(
    {
      workload: 'screen',
      db: driver,
      name: `callback → screen p50 @ ${at.toLocaleString('en-US')} subs`,
      target: '≤ floor + 1 ms',
      measured: `${si.screen.p50} vs floor ${fi.screen.p50} ms (+${round(si.screen.p50 - fi.screen.p50)} ms)${at !== 10_000 ? ' — 10 000 not in --sizes' : ''}`,
      met: si.screen.p50 <= fi.screen.p50 + 1,
    },
    {
      workload: 'screen',
      db: driver,
      name: `callback → screen p99 @ ${at.toLocaleString('en-US')} subs`,
      target: '≤ floor + 5 ms',
      measured: `${si.screen.p99} vs floor ${fi.screen.p99} ms (+${round(si.screen.p99 - fi.screen.p99)} ms)`,
      met: si.screen.p99 <= fi.screen.p99 + 5,
    },
    {
      workload: 'screen',
      db: driver,
      name: 'no PAID event missed',
      target: '0 missed',
      measured: `${missedAll} missed of ${results.service.reduce((a, r) => a + r.probes - r.notSent - r.failedReplies, 0)} acknowledged callbacks${
        results.service.some((r) => r.notSent + r.failedReplies) ? `; ${results.service.reduce((a, r) => a + r.notSent + r.failedReplies, 0)} not sent or failed (service saturated)` : ''
      }`,
      met: missedAll === 0,
    },
  );
  return { workload: 'screen', db: driver, rows, checks, details: { sizes, backgroundRate, intendedBackgroundRate: intendedRate, results } };
}
