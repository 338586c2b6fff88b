import { closedLoop } from '../lib/closed-loop';
import { sleep, type Ctx, type Row, type TargetCheck, type WorkloadResult } from '../lib/context';
import { insertPayingOrders, newId, orderNo, paymentNo, query, type BenchDb, type Driver, type PayingOrder } from '../lib/db';
import { openLoop, type OpenLoopRequest } from '../lib/open-loop';
import { CpuMeter } from '../lib/proc';
import { ratio, round, summarize, type LatencySummary } from '../lib/stats';
import { startFloor, startService, type LoopDelay, type Target } from '../lib/targets';
import { paymentNotification, type SignedNotification, type WechatSetup } from '../lib/wechat';

/**
 * Payment callbacks: pre-created PAYING orders (written with the plain driver: order PAYING, payment PENDING, as
 * payOrder leaves them), signed and AES-GCM encrypted WeChat Pay `TRANSACTION.SUCCESS` notifications built with the
 * simulator's own signer. In every stream 10 % of the deliveries are duplicates sent at the same moment as their
 * original (concurrently, on another connection) and 1 % are forged (signed with a key that is not WeChat Pay's).
 *
 * Phases: maximum throughput (autocannon, 64 connections, a fixed set of deliveries), then rising open-loop rates
 * (25/50/75/100 % of the floor's maximum) timing each reply from its intended send time. Afterwards every genuine
 * order must be PAID exactly once and every forged one untouched. Floor: floors/callback.ts.
 */

const CONNECTIONS = 64;
const FRACTIONS = [0.25, 0.5, 0.75, 1.0];
/** Priors for sizing the maximum-throughput phase (stack.md measured about 1,150/s and 2,750/s). */
const PRIOR_FLOOR_RATE: Record<Driver, number> = { postgresql: 2000, sqlite: 5000 };

export interface CallbackEntry {
  paymentNo: string;
  amount: number;
  customerId: string;
}

/** Shared payment numbers; each target gets its own order and payment ids for them. */
export function callbackEntries(count: number, offset: number, customer = 'cb'): CallbackEntry[] {
  const now = new Date();
  return Array.from({ length: count }, (_, i) => ({ paymentNo: paymentNo(offset + i, now), amount: 100 + ((offset + i) % 50) * 10, customerId: `${customer}-${(offset + i) % 500}` }));
}

export function materialize(entries: CallbackEntry[], seqOffset: number): PayingOrder[] {
  const now = new Date();
  return entries.map((e, i) => ({ ...e, orderId: newId(), paymentId: newId(), orderNo: orderNo(seqOffset + i, now) }));
}

/**
 * The deliveries for a slice of entries: entry j is forged when j % 90 == 45 (1 % of deliveries), otherwise genuine;
 * genuine entries with j % 9 == 0 are delivered twice at once (10 % of deliveries are duplicates).
 */
export function buildBatches(setup: WechatSetup, entries: CallbackEntry[]): SignedNotification[][] {
  return entries.map((e, j) => {
    if (j % 90 === 45) return [paymentNotification(setup, e.paymentNo, e.amount, true)];
    const n = paymentNotification(setup, e.paymentNo, e.amount);
    return j % 9 === 0 ? [n, n] : [n];
  });
}

export function notifyRequest(n: SignedNotification): OpenLoopRequest {
  return {
    path: '/notify/wechatpay',
    headers: n.headers,
    body: n.rawBody,
    // Forged deliveries are expected to get 400, every other one 2xx.
    expect: (status) => (n.forged ? status === 400 : status >= 200 && status < 300),
  };
}

interface Tally {
  genuine: Set<string>;
  forged: Set<string>;
  duplicates: number;
  sent: number;
}

/** How many leading batches hold the first `requests` deliveries. */
function batchesCovering(batches: SignedNotification[][], requests: number): number {
  let n = 0;
  let b = 0;
  while (b < batches.length && n < requests) n += batches[b++]!.length;
  return b;
}

/** Counts what was actually sent (batches up to `upTo`, minus requests the open-loop client did not send). */
function tally(t: Tally, batches: SignedNotification[][], upTo = batches.length, dropped?: Map<number, number>): void {
  batches.slice(0, upTo).forEach((b, i) => {
    const sent = b.length - (dropped?.get(i) ?? 0);
    if (sent <= 0) return;
    for (const n of b) (n.forged ? t.forged : t.genuine).add(n.paymentNo);
    t.duplicates += sent - 1;
    t.sent += sent;
  });
}

interface MaxResult {
  rate: number;
  cpuMsPerOp: number;
  requests: number;
  unexpected: number;
  latency: { p50: number; p99: number };
}

/** Closed loop over the deliveries in order: all of them (`durationMs` unset), or as many as fit in `durationMs`. */
async function maxPhase(target: Target, batches: SignedNotification[][], durationMs?: number): Promise<MaxResult> {
  const flat = batches.flat();
  let i = 0;
  const meter = new CpuMeter(target.pid);
  const r = await closedLoop({
    url: target.url,
    connections: CONNECTIONS,
    ...(durationMs ? { durationMs } : { amount: flat.length }),
    next: () => {
      const n = flat[i++ % flat.length]!;
      return { method: 'POST', ...notifyRequest(n) };
    },
  });
  const cpu = meter.stop();
  return {
    rate: round(r.rate, 1),
    cpuMsPerOp: round(cpu.serverMs / Math.max(1, r.total)),
    requests: r.total,
    unexpected: r.unexpectedStatus + r.errors + r.timeouts,
    latency: { p50: r.latency.p50, p99: r.latency.p99 },
  };
}

interface RateResult {
  fraction: number;
  /** Not run: the rate is above the target's measured maximum (saturated). */
  skipped?: boolean;
  rate: number;
  latency: LatencySummary;
  /** The target's event-loop delay over the phase (absent when not run). */
  loopDelay?: LoopDelay;
  achievedRate: number;
  cpuMsPerOp: number;
  unexpected: number;
  dropped: number;
  sentBatches: number;
  droppedByBatch: Map<number, number>;
  /** Reply latency by kind of delivery: a lone genuine one, either of a duplicate pair, a forged one. */
  byKind?: Record<'single' | 'duplicatePair' | 'forged', LatencySummary>;
}

async function ratePhase(target: Target, batches: SignedNotification[][], rate: number, durationMs: number, fraction: number): Promise<RateResult> {
  const batchRate = (rate * batches.length) / batches.flat().length;
  let sentBatches = 0;
  await target.loopDelay(true);
  const meter = new CpuMeter(target.pid);
  const kinds = { single: [] as number[], duplicatePair: [] as number[], forged: [] as number[] };
  const r = await openLoop({
    url: target.url,
    rate: batchRate,
    durationMs,
    warmupMs: Math.min(1000, durationMs * 0.1),
    next: (i) => {
      sentBatches = i + 1;
      return batches[i % batches.length]!.map(notifyRequest);
    },
    onResult: (latency, ok, i, _kind, recorded) => {
      if (!ok || !recorded) return;
      const b = batches[i % batches.length]!;
      (b.length > 1 ? kinds.duplicatePair : b[0]!.forged ? kinds.forged : kinds.single).push(latency);
    },
  });
  const cpu = meter.stop();
  return {
    fraction,
    loopDelay: await target.loopDelay(),
    rate: round(rate, 1),
    latency: summarize(r.latencies),
    achievedRate: round(r.achievedRate, 1),
    cpuMsPerOp: round(cpu.serverMs / Math.max(1, r.ok + r.unexpected)),
    unexpected: r.unexpected + r.errors + r.timeouts,
    dropped: r.dropped,
    sentBatches,
    droppedByBatch: r.droppedByBatch,
    byKind: { single: summarize(kinds.single), duplicatePair: summarize(kinds.duplicatePair), forged: summarize(kinds.forged) },
  };
}

interface Verification {
  genuine: number;
  paid: number;
  notPaid: number;
  forged: number;
  forgedChanged: number;
  paidTwice: number;
  appliedTwice?: number;
  inbox?: Record<string, number>;
}

async function verify(db: BenchDb, kind: 'floor' | 'service', t: Tally): Promise<Verification> {
  const genuine = [...t.genuine];
  const forged = [...t.forged].filter((p) => !t.genuine.has(p));
  const statuses = await query<{ payment_no: string; status: string; pstatus: string }>(
    db,
    {
      pg: `select p.payment_no, o.status, p.status as pstatus from payments p join orders o on o.id = p.order_id where p.payment_no = any($1)`,
      sqlite: `select p.payment_no, o.status, p.status as pstatus from payments p join orders o on o.id = p.order_id where p.payment_no in (select value from json_each(?))`,
    },
    db.driver === 'postgresql' ? [[...genuine, ...forged]] : [JSON.stringify([...genuine, ...forged])],
  );
  const by = new Map(statuses.map((s) => [s.payment_no, s]));
  const paid = genuine.filter((p) => by.get(p)?.status === 'PAID' && by.get(p)?.pstatus === 'SUCCEEDED').length;
  const forgedChanged = forged.filter((p) => by.get(p)?.status !== 'PAYING' || by.get(p)?.pstatus !== 'PENDING').length;
  const v: Verification = { genuine: genuine.length, paid, notPaid: genuine.length - paid, forged: forged.length, forgedChanged, paidTwice: 0 };
  if (kind === 'service') {
    const twice = await query<{ n: number }>(db, {
      pg: `select count(*)::int as n from (select order_id from order_events where to_status = 'PAID' group by order_id having count(*) > 1) x`,
      sqlite: `select count(*) as n from (select order_id from order_events where to_status = 'PAID' group by order_id having count(*) > 1) x`,
    });
    v.paidTwice = Number(twice[0]?.n ?? 0);
    // Each payment applied at most once by the inbox (deliveries in flight when a phase ended are applied too, so
    // the total can exceed what was counted as sent).
    const appliedTwice = await query<{ n: number }>(db, {
      pg: `select count(*)::int as n from (select payment_no from payment_notifications where outcome = 'applied' group by payment_no having count(*) > 1) x`,
      sqlite: `select count(*) as n from (select payment_no from payment_notifications where outcome = 'applied' group by payment_no having count(*) > 1) x`,
    });
    v.appliedTwice = Number(appliedTwice[0]?.n ?? 0);
    const inbox = await query<{ outcome: string; n: number }>(db, {
      pg: `select outcome, count(*)::int as n from payment_notifications group by outcome`,
      sqlite: `select outcome, count(*) as n from payment_notifications group by outcome`,
    });
    v.inbox = Object.fromEntries(inbox.map((r) => [r.outcome, Number(r.n)]));
  }
  return v;
}

export async function runCallback(ctx: Ctx, driver: Driver): Promise<WorkloadResult> {
  const d = ctx.opts.durationSec * 1000;
  const maxCount = Math.round(PRIOR_FLOOR_RATE[driver] * ctx.opts.durationSec * (ctx.opts.quick ? 1 : 1));
  const maxEntries = callbackEntries(maxCount, 0);
  const floorDb = await ctx.dbs.create(driver, 'cb_floor');
  const serviceDb = await ctx.dbs.create(driver, 'cb_service');
  await insertPayingOrders(floorDb, materialize(maxEntries, 0));
  await insertPayingOrders(serviceDb, materialize(maxEntries, 0));
  const floor = await startFloor(ctx, floorDb);
  const service = await startService(ctx, serviceDb);
  const tallies = { floor: { genuine: new Set<string>(), forged: new Set<string>(), duplicates: 0, sent: 0 }, service: { genuine: new Set<string>(), forged: new Set<string>(), duplicates: 0, sent: 0 } };
  try {
    // Warm-up (JIT, pools) on orders of their own, with the same mix; not counted.
    const warmEntries = callbackEntries(ctx.opts.quick ? 200 : 600, 9_000_000, 'warm');
    await insertPayingOrders(floorDb, materialize(warmEntries, 9_000_000));
    await insertPayingOrders(serviceDb, materialize(warmEntries, 9_000_000));
    const warmBatches = buildBatches(ctx.wechat, warmEntries);
    const warmGenuine = new Set(warmBatches.flat().filter((n) => !n.forged).map((n) => n.paymentNo)).size;
    for (const t of [floor, service]) await maxPhase(t, warmBatches);

    // Maximum throughput: the floor gets the whole set (sized from the priors to last about the phase's duration),
    // the service as many of the same deliveries as it answers in the phase's duration.
    const batches = buildBatches(ctx.wechat, maxEntries);
    await sleep(300);
    const floorMax = await maxPhase(floor, batches);
    tally(tallies.floor, batches);
    ctx.log(`  ${floor.label} max: ${floorMax.rate} deliveries/s (${floorMax.cpuMsPerOp} ms CPU each, unexpected ${floorMax.unexpected})`);
    // The rate phases' orders are written now, while the service is idle: a write from another process while it
    // works makes its deferred SQLite transactions fail with SQLITE_BUSY (see the report), which is not what is
    // measured here.
    let offset = maxCount;
    const phaseSets: Array<{ fraction: number; rate: number; own: boolean; entries: CallbackEntry[] }> = [];
    const plan = [...FRACTIONS.map((f) => ({ fraction: f, rate: Math.max(10, floorMax.rate * f), own: false }))];
    for (const { fraction, rate, own } of plan) {
      const count = Math.ceil(rate * 0.9 * ctx.opts.durationSec) + 5;
      const entries = callbackEntries(count, offset);
      await insertPayingOrders(floorDb, materialize(entries, offset));
      await insertPayingOrders(serviceDb, materialize(entries, offset));
      offset += count;
      phaseSets.push({ fraction, rate, own, entries });
    }
    await sleep(300);
    const serviceMax = await maxPhase(service, batches, d);
    // Timed phase: deliveries around its end (up to one per connection either side of the count answered) may or may
    // not have reached the service, so only those before are checked (paid twice / applied twice cover all rows).
    tally(tallies.service, batches, batchesCovering(batches, Math.max(0, serviceMax.requests - 2 * CONNECTIONS)));
    ctx.log(`  ${service.label} max: ${serviceMax.rate} deliveries/s (${serviceMax.cpuMsPerOp} ms CPU each, unexpected ${serviceMax.unexpected})`);

    // Rising rates, each on fresh orders; then 50 % of the service's own maximum (for both). A rate above what the
    // service reached in the maximum-throughput phase is not run against it (its queue could only grow: saturated).
    const phases: Record<'floor' | 'service', RateResult[]> = { floor: [], service: [] };
    const ownRate = Math.max(10, serviceMax.rate * 0.5);
    {
      // 50 % of the service's own maximum: its orders are written once the service has answered what the timed
      // phase left in flight.
      await sleep(1500);
      const count = Math.ceil(ownRate * 0.9 * ctx.opts.durationSec) + 5;
      const entries = callbackEntries(count, offset);
      await insertPayingOrders(floorDb, materialize(entries, offset));
      await insertPayingOrders(serviceDb, materialize(entries, offset));
      offset += count;
      phaseSets.push({ fraction: 0.5, rate: ownRate, own: true, entries });
    }
    const rates = phaseSets.map(({ fraction, rate, own }) => ({ fraction, rate, own }));
    for (const { fraction, rate, own, entries } of phaseSets) {
      // Signed right before the phase (WeChat Pay's 300 s timestamp window).
      const phaseBatches = buildBatches(ctx.wechat, entries);
      for (const t of [floor, service]) {
        if (t.kind === 'service' && rate > serviceMax.rate) {
          phases.service.push({ fraction, skipped: true, rate: round(rate, 1), latency: { count: 0, p50: Infinity, p90: Infinity, p99: Infinity, max: Infinity, mean: Infinity }, achievedRate: NaN, cpuMsPerOp: NaN, unexpected: 0, dropped: 0, sentBatches: 0, droppedByBatch: new Map() });
          ctx.log(`  ${t.label} @${Math.round(fraction * 100)}% (${round(rate, 1)}/s): not run, above its maximum ${serviceMax.rate}/s (saturated)`);
          continue;
        }
        await sleep(300);
        const p = await ratePhase(t, phaseBatches, rate, d, fraction);
        tally(tallies[t.kind], phaseBatches, p.sentBatches, p.droppedByBatch);
        phases[t.kind].push(p);
        ctx.log(
          `  ${t.label} @${Math.round(fraction * 100)}% of ${own ? "the service's" : "the floor's"} max (${p.rate}/s): reply p50 ${p.latency.p50} ms, p99 ${p.latency.p99} ms, event-loop delay p99 ${p.loopDelay?.p99} ms (max ${p.loopDelay?.max}), achieved ${p.achievedRate}/s, unexpected ${p.unexpected}, not sent ${p.dropped}; p99 by kind: lone ${p.byKind?.single.p99}, duplicate pairs ${p.byKind?.duplicatePair.p99}, forged ${p.byKind?.forged.p99} ms`,
        );
      }
    }

    await sleep(500);
    const check = { floor: await verify(floorDb, 'floor', tallies.floor), service: await verify(serviceDb, 'service', tallies.service) };
    ctx.log(`  verification: floor ${JSON.stringify(check.floor)}; service ${JSON.stringify(check.service)}`);

    const rows: Row[] = [
      {
        metric: 'max throughput (10 % duplicates, 1 % forged)',
        unit: 'deliveries/s',
        floor: floorMax.rate,
        service: serviceMax.rate,
        ratio: ratio(serviceMax.rate, floorMax.rate),
        floorCpuMs: floorMax.cpuMsPerOp,
        serviceCpuMs: serviceMax.cpuMsPerOp,
        note: `autocannon ${CONNECTIONS} connections; ${floorMax.requests} / ${serviceMax.requests} deliveries`,
      },
    ];
    rates.forEach(({ fraction, own }, i) => {
      const f = phases.floor[i]!;
      const s = phases.service[i]!;
      for (const pct of ['p50', 'p99'] as const) {
        rows.push({
          metric: `reply ${pct} @ ${Math.round(fraction * 100)}% of ${own ? "the service's" : "the floor's"} max (${f.rate}/s)`,
          unit: 'ms',
          floor: f.latency[pct],
          service: s.latency[pct],
          ratio: ratio(s.latency[pct], f.latency[pct]),
          floorCpuMs: pct === 'p50' ? f.cpuMsPerOp : undefined,
          serviceCpuMs: pct === 'p50' ? s.cpuMsPerOp : undefined,
          note:
            pct === 'p50' && s.skipped
              ? 'service saturated: rate above its maximum, not run'
              : pct === 'p99' && (s.dropped || s.unexpected || f.dropped || f.unexpected)
              ? `unexpected/not sent: floor ${f.unexpected}/${f.dropped}, service ${s.unexpected}/${s.dropped}`
              : undefined,
        });
      }
    });
    const sv = check.service;
    rows.push({
      metric: 'orders PAID exactly once',
      unit: 'orders',
      floor: check.floor.paid,
      service: sv.paid,
      ratioKind: 'n/a',
      note: `of ${check.floor.genuine} / ${sv.genuine} genuine; service: paid twice ${sv.paidTwice}, applied twice ${sv.appliedTwice}, forged changed ${sv.forgedChanged} of ${sv.forged}`,
    });

    const half = phases.service[FRACTIONS.indexOf(0.5)]!;
    const checks: TargetCheck[] = [
      {
        workload: 'callback',
        db: driver,
        name: 'callback throughput',
        target: '≥ 0.6× floor',
        measured: `${ratio(serviceMax.rate, floorMax.rate)}× (${serviceMax.rate} vs ${floorMax.rate} deliveries/s)`,
        met: ratio(serviceMax.rate, floorMax.rate) >= 0.6,
      },
      {
        workload: 'callback',
        db: driver,
        name: 'callback reply p99 @ 50% load',
        target: '≤ 20 ms',
        measured: half.skipped
          ? `saturated: ${half.rate}/s is above the service's maximum ${serviceMax.rate}/s (at 50 % of its own maximum: p99 ${phases.service[FRACTIONS.length]!.latency.p99} ms)`
          : `${half.latency.p99} ms at ${half.rate}/s${half.dropped ? ` (${half.dropped} not sent: saturated)` : ''}`,
        met: !half.skipped && half.latency.p99 <= 20 && half.dropped === 0 && half.unexpected === 0,
      },
      {
        workload: 'callback',
        db: driver,
        name: 'exactly one PAID per order',
        target: 'every genuine order PAID once; forged change nothing',
        measured: `${sv.paid}/${sv.genuine} PAID, ${sv.paidTwice} paid twice, ${sv.appliedTwice} applied twice, ${sv.forgedChanged}/${sv.forged} forged applied; inbox ${JSON.stringify(sv.inbox ?? {})} (incl. ${warmGenuine} warm-up)`,
        met: sv.paid === sv.genuine && sv.paidTwice === 0 && sv.appliedTwice === 0 && sv.forgedChanged === 0,
      },
    ];
    return {
      workload: 'callback',
      db: driver,
      rows,
      checks,
      details: { floorMax, serviceMax, phases: { floor: phases.floor.map(({ droppedByBatch: _, ...p }) => p), service: phases.service.map(({ droppedByBatch: _, ...p }) => p) }, verification: check, deliveries: { floor: { ...tallies.floor, genuine: tallies.floor.genuine.size, forged: tallies.floor.forged.size }, service: { ...tallies.service, genuine: tallies.service.genuine.size, forged: tallies.service.forged.size } } },
    };
  } finally {
    await floor.stop();
    await service.stop();
    await floorDb.drop();
    await serviceDb.drop();
  }
}

