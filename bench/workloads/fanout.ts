import type { Ctx, Row, TargetCheck, WorkloadResult } from '../lib/context';
import type { Driver } from '../lib/db';
import { ratio } from '../lib/stats';
import { ladderPlan, runLadder } from './ladder';

/**
 * Fan-out (ladder.ts): one event to a subscriber among N (its cost must not grow with N), and one event to many
 * subscribers of one order (admin screens). Events are PUBLISHed straight to the order's Redis channel, so the
 * numbers are the realtime path alone (Redis → process → socket), service against the raw-ws floor.
 */
export async function runFanout(ctx: Ctx, driver: Driver): Promise<WorkloadResult> {
  const plan = ladderPlan(ctx);
  const r = await runLadder(ctx, driver);
  const rows: Row[] = [];
  plan.fanoutSizes.forEach((size, i) => {
    const f = r.floor.oneOfN[i]!;
    const s = r.service.oneOfN[i]!;
    for (const pct of ['p50', 'p99'] as const) {
      rows.push({
        metric: `event to one subscriber among ${size.toLocaleString('en-US')}, ${pct}`,
        unit: 'ms',
        floor: f.latency[pct],
        service: s.latency[pct],
        ratio: ratio(s.latency[pct], f.latency[pct]),
        note: pct === 'p99' ? `${s.latency.count} events at ${plan.eventRate}/s${f.missed || s.missed ? `; missed ${f.missed} / ${s.missed}` : ''}` : undefined,
      });
    }
  });
  const fm = r.floor.toMany!;
  const sm = r.service.toMany!;
  for (const [label, key] of [
    ['the last of them', 'last'],
    ['each', 'each'],
  ] as const) {
    for (const pct of ['p50', 'p99'] as const) {
      rows.push({
        metric: `event to ${plan.manySubscribers.toLocaleString('en-US')} subscribers of one order, ${label}, ${pct}`,
        unit: 'ms',
        floor: fm[key][pct],
        service: sm[key][pct],
        ratio: ratio(sm[key][pct], fm[key][pct]),
        note: pct === 'p99' && key === 'last' ? `${sm.events} events, ${sm.idle.toLocaleString('en-US')} idle held besides; missed ${fm.missed} / ${sm.missed}` : undefined,
      });
    }
  }
  const small = r.service.oneOfN[0]!;
  const large = r.service.oneOfN[r.service.oneOfN.length - 1]!;
  const growth = ratio(large.latency.p99, small.latency.p99);
  const missed = r.service.oneOfN.reduce((a, x) => a + x.missed, 0) + sm.missed;
  const checks: TargetCheck[] = [
    {
      workload: 'fanout',
      db: driver,
      name: `fan-out to one of N: p99 at N = ${large.size.toLocaleString('en-US')} vs N = ${small.size}`,
      target: '≤ 1.2×',
      measured: `${growth}× (${large.latency.p99} vs ${small.latency.p99} ms; floor ${r.floor.oneOfN[r.floor.oneOfN.length - 1]!.latency.p99} vs ${r.floor.oneOfN[0]!.latency.p99} ms)${large.size < 50_000 ? ' — 50 000 not in --sizes' : ''}`,
      met: growth <= 1.2 && large.missed === 0,
    },
    { workload: 'fanout', db: driver, name: 'fan-out events delivered', target: '0 missed', measured: `${missed} missed`, met: missed === 0 },
  ];
  return { workload: 'fanout', db: driver, rows, checks, details: { plan, floor: { oneOfN: r.floor.oneOfN, toMany: fm }, service: { oneOfN: r.service.oneOfN, toMany: sm } } };
}
