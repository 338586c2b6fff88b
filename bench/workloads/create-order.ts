import { closedLoop, type ClosedLoopResult } from '../lib/closed-loop';
import { sleep, type Ctx, type Row, type TargetCheck, type WorkloadResult } from '../lib/context';
import type { Driver } from '../lib/db';
import { openLoop } from '../lib/open-loop';
import { CpuMeter } from '../lib/proc';
import { createOrderOk, createOrderRequest, customerTokens } from '../lib/requests';
import { median, ratio, round, summarize, type LatencySummary } from '../lib/stats';
import { startFloor, startService, type LoopDelay, type Target } from '../lib/targets';

/**
 * createOrder: maximum throughput (autocannon, 64 connections, a unique idempotency key per request), then latency
 * at fixed rates (25/50/75 % of the floor's maximum) from the open-loop client timing from the intended send time.
 * Floor: floors/create-order.ts (the same SQL transaction with the plain driver). Floor and service run side by side
 * (both processes up, fresh databases from the same template) and alternate phase by phase.
 */

const CONNECTIONS = 64;
const FRACTIONS = [0.25, 0.5, 0.75];

export interface MaxTrial {
  rate: number;
  cpuMsPerOp: number;
  machineCpuMsPerOp: number;
  result: ClosedLoopResult;
}

export async function maxCreateOrder(target: Target, tag: string, durationMs: number, tokens: string[]): Promise<MaxTrial> {
  let i = 0;
  const meter = new CpuMeter(target.pid);
  const result = await closedLoop({
    url: target.url,
    connections: CONNECTIONS,
    durationMs,
    next: () => {
      const r = createOrderRequest(tokens, tag, i++);
      return { method: 'POST', path: r.path, headers: r.headers, body: r.body as string };
    },
    verifyBody: (body) => createOrderOk(200, body),
  });
  const cpu = meter.stop();
  return {
    rate: round(result.goodRate, 1),
    cpuMsPerOp: round(cpu.serverMs / Math.max(1, result.good)),
    machineCpuMsPerOp: round(cpu.machineBusyMs / Math.max(1, result.good)),
    result,
  };
}

/** Short closed-loop load so both processes are JIT-warm and their pools are open before anything is measured. */
export async function warm(target: Target, tag: string, ms: number, tokens: string[]): Promise<void> {
  let i = 0;
  await closedLoop({
    url: target.url,
    connections: 16,
    durationMs: ms,
    next: () => {
      const r = createOrderRequest(tokens, `${tag}-warm`, i++);
      return { method: 'POST', path: r.path, headers: r.headers, body: r.body as string };
    },
  });
}

interface RatePhase {
  fraction: number;
  rate: number;
  latency: LatencySummary;
  /** The target's event-loop delay over the phase (absent when not run). */
  loopDelay?: LoopDelay;
  achievedRate: number;
  cpuMsPerOp: number;
  failed: number;
  /** Not sent: the target was saturated (2 s of requests already waiting). */
  dropped: number;
  dispatchLagP99: number;
  /** Not run: the rate is above the target's measured maximum. */
  skipped?: boolean;
}

function saturated(fraction: number, rate: number): RatePhase {
  const inf = { count: 0, p50: Infinity, p90: Infinity, p99: Infinity, max: Infinity, mean: Infinity };
  return { fraction, rate: round(rate, 1), latency: inf, achievedRate: NaN, cpuMsPerOp: NaN, failed: 0, dropped: 0, dispatchLagP99: NaN, skipped: true };
}

async function ratePhase(target: Target, tag: string, rate: number, durationMs: number, tokens: string[]): Promise<Omit<RatePhase, 'fraction'>> {
  await target.loopDelay(true);
  const meter = new CpuMeter(target.pid);
  const r = await openLoop({
    url: target.url,
    rate,
    durationMs,
    warmupMs: Math.min(1000, durationMs * 0.1),
    next: (i) => createOrderRequest(tokens, tag, i),
  });
  const cpu = meter.stop();
  return {
    loopDelay: await target.loopDelay(),
    rate: round(rate, 1),
    latency: summarize(r.latencies),
    achievedRate: round(r.achievedRate, 1),
    cpuMsPerOp: round(cpu.serverMs / Math.max(1, r.ok)),
    failed: r.unexpected + r.errors + r.timeouts + r.dropped,
    dropped: r.dropped,
    dispatchLagP99: round(r.dispatchLagP99),
  };
}

export async function runCreateOrder(ctx: Ctx, driver: Driver): Promise<WorkloadResult> {
  const d = ctx.opts.durationSec * 1000;
  const tokens = customerTokens(1000, `co-${ctx.runId}-`);
  const floorDb = await ctx.dbs.create(driver, 'co_floor');
  const serviceDb = await ctx.dbs.create(driver, 'co_service');
  const floor = await startFloor(ctx, floorDb);
  const service = await startService(ctx, serviceDb);
  try {
    const warmMs = ctx.opts.quick ? 700 : 2000;
    await warm(floor, 'f', warmMs, tokens);
    await warm(service, 's', warmMs, tokens);
    const trials: Record<'floor' | 'service', MaxTrial[]> = { floor: [], service: [] };
    for (let k = 0; k < ctx.opts.repeat; k++) {
      for (const t of [floor, service]) {
        await sleep(300);
        const trial = await maxCreateOrder(t, `${t.kind[0]}max${k}`, d, tokens);
        trials[t.kind].push(trial);
        ctx.log(`  ${t.label} max #${k + 1}: ${trial.rate} orders/s (${trial.cpuMsPerOp} ms CPU/order, errors ${trial.result.errors + trial.result.mismatches + trial.result.non2xx})`);
      }
    }
    const floorMax = median(trials.floor.map((t) => t.rate));
    const serviceMax = median(trials.service.map((t) => t.rate));
    ctx.floorCreateOrderMax[driver] = floorMax;

    ctx.serviceCreateOrderMax[driver] = serviceMax;

    // Fixed rates: 25/50/75 % of the floor's maximum for both. A rate above what the service reached in the
    // maximum-throughput phase is not run against it: its queue could only grow (latency unbounded: saturated).
    const phases: Record<'floor' | 'service', RatePhase[]> = { floor: [], service: [] };
    const rates = [...FRACTIONS.map((f) => ({ fraction: f, rate: Math.max(5, floorMax * f), own: false })), { fraction: 0.5, rate: Math.max(5, serviceMax * 0.5), own: true }];
    for (const { fraction, rate, own } of rates) {
      for (const t of [floor, service]) {
        if (t.kind === 'service' && rate > serviceMax) {
          phases.service.push(saturated(fraction, rate));
          ctx.log(`  ${t.label} @${Math.round(fraction * 100)}% (${round(rate, 1)}/s): not run, above its maximum ${serviceMax}/s (saturated)`);
          continue;
        }
        await sleep(300);
        const p = await ratePhase(t, `${t.kind[0]}r${fraction}${own ? 'own' : ''}`, rate, d, tokens);
        phases[t.kind].push({ fraction, ...p });
        ctx.log(
          `  ${t.label} @${Math.round(fraction * 100)}% of ${own ? "the service's" : "the floor's"} max (${p.rate}/s): p50 ${p.latency.p50} ms, p99 ${p.latency.p99} ms, event-loop delay p99 ${p.loopDelay?.p99} ms (max ${p.loopDelay?.max}), achieved ${p.achievedRate}/s, failed ${p.failed}`,
        );
      }
    }

    const rows: Row[] = [
      {
        metric: 'max throughput',
        unit: 'orders/s',
        floor: floorMax,
        service: serviceMax,
        ratio: ratio(serviceMax, floorMax),
        floorCpuMs: median(trials.floor.map((t) => t.cpuMsPerOp)),
        serviceCpuMs: median(trials.service.map((t) => t.cpuMsPerOp)),
        note: `autocannon, ${CONNECTIONS} connections, median of ${ctx.opts.repeat}`,
      },
    ];
    rates.forEach(({ fraction, own }, i) => {
      const f = phases.floor[i]!;
      const s = phases.service[i]!;
      for (const pct of ['p50', 'p99'] as const) {
        rows.push({
          metric: `latency ${pct} @ ${Math.round(fraction * 100)}% of ${own ? "the service's" : "the floor's"} max (${f.rate}/s)`,
          unit: 'ms',
          floor: f.latency[pct],
          service: s.latency[pct],
          ratio: ratio(s.latency[pct], f.latency[pct]),
          floorCpuMs: pct === 'p50' ? f.cpuMsPerOp : undefined,
          serviceCpuMs: pct === 'p50' ? s.cpuMsPerOp : undefined,
          note:
            pct === 'p50' && s.skipped
              ? 'service saturated: rate above its maximum, not run'
              : pct === 'p99' && (s.failed || f.failed)
                ? `failed or not sent: floor ${f.failed}, service ${s.failed} of ${Math.round(f.rate * ctx.opts.durationSec)}`
                : undefined,
        });
      }
    });

    const half = FRACTIONS.indexOf(0.5);
    const p99Ratio = phases.service[half]!.skipped ? Infinity : ratio(phases.service[half]!.latency.p99, phases.floor[half]!.latency.p99);
    const checks: TargetCheck[] = [
      {
        workload: 'createOrder',
        db: driver,
        name: 'createOrder throughput',
        target: '≥ 0.4× floor',
        measured: `${ratio(serviceMax, floorMax)}× (${serviceMax} vs ${floorMax} orders/s)`,
        met: ratio(serviceMax, floorMax) >= 0.4,
      },
      {
        workload: 'createOrder',
        db: driver,
        name: 'createOrder p99 @ 50% load',
        target: '≤ 2× floor',
        measured: phases.service[half]!.skipped
          ? `saturated: ${phases.floor[half]!.rate}/s is above the service's maximum ${serviceMax}/s (floor p99 ${phases.floor[half]!.latency.p99} ms)`
          : `${p99Ratio}× (${phases.service[half]!.latency.p99} vs ${phases.floor[half]!.latency.p99} ms)`,
        met: p99Ratio <= 2 && phases.service[half]!.failed === 0,
      },
    ];
    return { workload: 'createOrder', db: driver, rows, checks, details: { trials, phases } };
  } finally {
    await floor.stop();
    await service.stop();
    await floorDb.drop();
    await serviceDb.drop();
  }
}

/** The floor's maximum createOrder throughput on a driver: from the createOrder workload, or a short calibration. */
export async function floorCreateOrderMax(ctx: Ctx, driver: Driver): Promise<number> {
  const known = ctx.floorCreateOrderMax[driver];
  if (known) return known;
  const db = await ctx.dbs.create(driver, 'co_calib');
  const floor = await startFloor(ctx, db);
  try {
    const tokens = customerTokens(200, `calib-${ctx.runId}-`);
    await warm(floor, 'c', 700, tokens);
    const trial = await maxCreateOrder(floor, 'calib', ctx.opts.quick ? 1500 : 3000, tokens);
    ctx.log(`  floor/${driver} createOrder max (calibration): ${trial.rate} orders/s`);
    ctx.floorCreateOrderMax[driver] = trial.rate;
    return trial.rate;
  } finally {
    await floor.stop();
    await db.drop();
  }
}

/** The service's maximum createOrder throughput on a driver: from the createOrder workload, or a short calibration. */
export async function serviceCreateOrderMax(ctx: Ctx, driver: Driver): Promise<number> {
  const known = ctx.serviceCreateOrderMax[driver];
  if (known) return known;
  const db = await ctx.dbs.create(driver, 'co_calib_svc');
  const service = await startService(ctx, db);
  try {
    const tokens = customerTokens(200, `calib-s-${ctx.runId}-`);
    await warm(service, 'c', 700, tokens);
    const trial = await maxCreateOrder(service, 'calib', ctx.opts.quick ? 1500 : 3000, tokens);
    ctx.log(`  service/${driver} createOrder max (calibration): ${trial.rate} orders/s`);
    ctx.serviceCreateOrderMax[driver] = trial.rate;
    return trial.rate;
  } finally {
    await service.stop();
    await db.drop();
  }
}
