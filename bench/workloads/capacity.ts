import type { Ctx, Row, TargetCheck, WorkloadResult } from '../lib/context';
import type { Driver } from '../lib/db';
import { ratio, round } from '../lib/stats';
import { ladderPlan, runLadder } from './ladder';

/**
 * Capacity: memory per held subscription from 1 000 to 50 000, and subscribes per second (ladder.ts holds them).
 *
 * Memory is the process's RSS after a full GC: the bench preloads a probe (lib/process-probe.ts) into the service
 * and the floor, both started with `--expose-gc`; it runs `gc()` twice and answers `process.memoryUsage()` over IPC
 * (VmRSS from /proc is recorded beside it). Per subscription = (RSS with N held − RSS before the first swarm socket)
 * ÷ N. Floor: a raw `ws` server holding the same sockets, one topic-map entry per subscription.
 */
export async function runCapacity(ctx: Ctx, driver: Driver): Promise<WorkloadResult> {
  const plan = ladderPlan(ctx);
  const r = await runLadder(ctx, driver);
  const f = r.floor.capacity;
  const s = r.service.capacity;
  const rows: Row[] = plan.capacitySizes.map((size, i) => ({
    metric: `RSS after GC per held subscription, ${size.toLocaleString('en-US')} held on ${s[i]!.sockets} sockets`,
    unit: 'KB',
    floor: f[i]!.kbPerSub,
    service: s[i]!.kbPerSub,
    ratio: ratio(s[i]!.kbPerSub, f[i]!.kbPerSub),
    note: `RSS ${f[i]!.rssMb} / ${s[i]!.rssMb} MB; service heap ${s[i]!.heapKbPerSub} KB/sub (used ${s[i]!.heapUsedMb} of ${s[i]!.heapTotalMb} MB)`,
  }));
  const last = plan.capacitySizes.length - 1;
  rows.push({
    metric: `subscribes per second (step to ${plan.capacitySizes[last]!.toLocaleString('en-US')})`,
    unit: 'subs/s',
    floor: f[last]!.subscribesPerSec,
    service: s[last]!.subscribesPerSec,
    ratio: ratio(s[last]!.subscribesPerSec, f[last]!.subscribesPerSec),
    floorCpuMs: f[last]!.cpuMsPerSubscribe,
    serviceCpuMs: s[last]!.cpuMsPerSubscribe,
    note: `${ctx.opts.subsPerSocket} per socket, ${ctx.opts.swarmProcesses} client processes, 64 in flight each`,
  });
  const worst = Math.max(...s.map((x) => x.kbPerSub));
  const top = s[last]!;
  const checks: TargetCheck[] = [
    {
      workload: 'capacity',
      db: driver,
      name: 'RSS per held subscription',
      target: '≤ 15 KB',
      // At 1 000 the RSS can move by itself more than the subscriptions add (the baseline is RSS before the swarm):
      // a figure at or below zero says so and gives the heap's growth beside it.
      measured: s
        .map((x) => `${x.kbPerSub} KB${x.kbPerSub <= 0 ? ` (within RSS noise; heap ${x.heapKbPerSub} KB)` : ''} @ ${x.size.toLocaleString('en-US')}`)
        .join(', '),
      met: worst <= 15,
    },
    {
      workload: 'capacity',
      db: driver,
      name: '50 000 subscriptions under 1 GB',
      target: 'RSS < 1 GB at 50 000',
      measured:
        top.size >= 50_000
          ? `${top.rssMb} MB at ${top.size.toLocaleString('en-US')}`
          : `${top.rssMb} MB at ${top.size.toLocaleString('en-US')}; extrapolated ${round(r.service.base.rss / 2 ** 20 + (top.kbPerSub * 50_000) / 1024, 0)} MB at 50 000`,
      met: top.size >= 50_000 ? top.rssMb < 1024 : null,
    },
  ];
  return { workload: 'capacity', db: driver, rows, checks, details: { floor: { base: r.floor.base, steps: f }, service: { base: r.service.base, steps: s } } };
}
