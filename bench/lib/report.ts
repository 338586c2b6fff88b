import type { MachineInfo } from './proc';
import type { Options, Row, TargetCheck, WorkloadResult } from './context';

function fmt(x: number | undefined, digits = 2): string {
  if (x === undefined || x === null || Number.isNaN(x)) return '—';
  if (x === Infinity) return 'saturated';
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString('en-US');
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  return x.toFixed(digits);
}

function ratioText(r: Row): string {
  if (r.ratio === undefined || Number.isNaN(r.ratio)) return '—';
  if (r.ratioKind === 'service-floor') return `${r.ratio >= 0 ? '+' : ''}${fmt(r.ratio)} ms`;
  if (r.ratioKind === 'n/a') return '—';
  return `${fmt(r.ratio)}×`;
}

export function machineLine(m: MachineInfo, startedAt: Date): string {
  return (
    `${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC · ${m.cores} × ${m.cpuModel}, ${m.memoryGb} GB, ${m.kernel}, ` +
    `Node ${m.node}, PostgreSQL ${m.postgres ?? '?'}, Redis ${m.redis ?? '?'}, fd limit ${m.fdLimit ?? '?'}, ` +
    `CPU idle before start ${m.idleBefore !== undefined ? Math.round(m.idleBefore * 100) + ' %' : '?'} (load ${m.loadavgBefore?.join(' ') ?? '?'})` +
    (m.gitCommit ? `, commit ${m.gitCommit}${m.gitDirty ? ' + local changes' : ''}` : '')
  );
}

/** The markdown report: one results table (metric, floor, service, ratio, CPU per op) and the targets. */
export function markdown(results: WorkloadResult[], checks: TargetCheck[], machine: MachineInfo, opts: Options, startedAt: Date, elapsedSec: number): string {
  const lines: string[] = [];
  lines.push(`Machine: ${machineLine(machine, startedAt)}.`);
  lines.push(
    `Run: \`${opts.quick ? '--quick' : 'default'}\`, workloads ${opts.workloads.join(', ')}; databases ${opts.dbs.join(', ')}; ` +
      `${opts.durationSec} s per phase; sizes ${opts.sizes.join(', ')}; ${opts.repeat} max-throughput trial(s) per target; took ${Math.round(elapsedSec)} s.`,
  );
  lines.push('');
  lines.push('| workload | db | metric | floor | service | service vs floor | CPU ms/op floor | CPU ms/op service | note |');
  lines.push('|---|---|---|---:|---:|---:|---:|---:|---|');
  for (const r of results) {
    if (r.error) {
      lines.push(`| ${r.workload} | ${r.db} | **failed** | | | | | | ${r.error.split('\n')[0]!.replace(/\|/g, '/').slice(0, 200)} |`);
      continue;
    }
    for (const row of r.rows) {
      lines.push(
        `| ${r.workload} | ${r.db} | ${row.metric} (${row.unit}) | ${fmt(row.floor)} | ${fmt(row.service)} | ${ratioText(row)} | ${fmt(row.floorCpuMs, 3)} | ${fmt(row.serviceCpuMs, 3)} | ${(row.note ?? '').replace(/\|/g, '/')} |`,
      );
    }
  }
  lines.push('');
  lines.push('| target | db | wanted | measured | met |');
  lines.push('|---|---|---|---|:---:|');
  for (const c of checks) {
    lines.push(`| ${c.name} | ${c.db} | ${c.target} | ${c.measured.replace(/\|/g, '/')} | ${c.met === null ? '—' : c.met ? '✅' : '❌'} |`);
  }
  return lines.join('\n');
}

/** Plain-text version for the terminal (same content, aligned columns). */
export function terminalTable(results: WorkloadResult[], checks: TargetCheck[]): string {
  const rows: string[][] = [['workload', 'db', 'metric', 'floor', 'service', 'svc vs floor', 'cpu/op floor', 'cpu/op svc']];
  for (const r of results) {
    if (r.error) {
      rows.push([r.workload, r.db, `FAILED: ${r.error.split('\n')[0]!.slice(0, 80)}`, '', '', '', '', '']);
      continue;
    }
    for (const row of r.rows) {
      rows.push([r.workload, r.db, `${row.metric} (${row.unit})`, fmt(row.floor), fmt(row.service), ratioText(row), fmt(row.floorCpuMs, 3), fmt(row.serviceCpuMs, 3)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const out = rows.map((r) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '));
  out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  out.push('');
  for (const c of checks) out.push(`${c.met === null ? ' ? ' : c.met ? 'MET' : 'MISSED'}  ${c.name} [${c.db}]: wanted ${c.target}; measured ${c.measured}`);
  return out.join('\n');
}
