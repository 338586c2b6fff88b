/**
 * `node dist/bench/tools/profile-summary.js <file.cpuprofile> [top]`: where a V8 CPU profile (written by the
 * service or a floor under BENCH_PROFILE_DIR) spends its time: self time by function and by package, and inclusive
 * time of the heaviest frames.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [top]');
const top = Number(topArg ?? 30);
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const label = (n: Node) => {
  const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/.*node_modules\//, 'nm:').replace(/.*\/dist\//, 'dist/');
  return `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
};
const pkg = (n: Node) => {
  const u = n.callFrame.url;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (m) return m[1]!;
  if (u.includes('/dist/src/')) return 'app (dist/src)';
  if (u.includes('/dist/bench/')) return 'bench';
  if (u.startsWith('node:')) return 'node:' + u.slice(5).split('/')[0];
  return n.callFrame.functionName.startsWith('(') ? n.callFrame.functionName : u || '(native)';
};

const total = [...self.values()].reduce((a, b) => a + b, 0);
const idle = [...self.entries()].filter(([id]) => ['(idle)', '(program)'].includes(byId.get(id)!.callFrame.functionName)).reduce((a, [, v]) => a + v, 0);
const busy = total - idle;
console.log(`profile ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(2)} s (excluding idle and program)`);

const agg = (key: (n: Node) => string) => {
  const m = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    if (['(idle)', '(program)'].includes(n.callFrame.functionName)) continue;
    m.set(key(n), (m.get(key(n)) ?? 0) + t);
  }
  return [...m.entries()].sort((a, b) => b[1] - a[1]);
};
const pct = (t: number) => `${((100 * t) / busy).toFixed(1).padStart(5)} %`;
console.log('\nself time by package:');
for (const [k, t] of agg(pkg).slice(0, top)) console.log(`  ${pct(t)}  ${k}`);
console.log('\nself time by function:');
for (const [k, t] of agg(label).slice(0, top)) console.log(`  ${pct(t)}  ${k}`);

// Inclusive time per distinct frame (counted once per sample stack).
const inclusive = new Map<string, number>();
for (let i = 0; i < p.samples.length; i++) {
  const seen = new Set<string>();
  let id: number | undefined = p.samples[i]!;
  const leaf = byId.get(id)!;
  if (['(idle)', '(program)'].includes(leaf.callFrame.functionName)) continue;
  while (id !== undefined) {
    const l = label(byId.get(id)!);
    if (!seen.has(l)) {
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + (p.timeDeltas[i] ?? 0));
    }
    id = parent.get(id);
  }
}
console.log('\ninclusive time (app and selected libraries):');
for (const [k, t] of [...inclusive.entries()].filter(([k]) => !k.startsWith('(root)')).sort((a, b) => b[1] - a[1]).slice(0, top * 2)) {
  console.log(`  ${pct(t)}  ${k}`);
}
