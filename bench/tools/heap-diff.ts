/**
 * `node dist/bench/tools/heap-diff.js before.heapsnapshot after.heapsnapshot [per] [top]`: what grew between two heap
 * snapshots of the same process (e.g. before and after holding N subscriptions): self size and count by constructor
 * name, divided by `per` (N) to read as bytes per subscription.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

function aggregate(file: string): Map<string, { size: number; count: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const width = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!;
    const raw = s.strings[s.nodes[i + iName]!] ?? '';
    const name =
      type === 'object' || type === 'closure'
        ? `${type}:${raw}`
        : type === 'code' || type === 'native'
          ? `(${type}) ${raw.slice(0, 60)}`
          : `(${type})`;
    const e = out.get(name) ?? { size: 0, count: 0 };
    e.size += s.nodes[i + iSize]!;
    e.count++;
    out.set(name, e);
  }
  return out;
}

const [a, b, perArg, topArg] = process.argv.slice(2);
if (!a || !b) throw new Error('usage: heap-diff before.heapsnapshot after.heapsnapshot [per] [top]');
const per = Number(perArg ?? 1);
const top = Number(topArg ?? 40);
const before = aggregate(a);
const after = aggregate(b);
const rows = [...after.entries()].map(([k, v]) => {
  const o = before.get(k) ?? { size: 0, count: 0 };
  return { name: k, size: v.size - o.size, count: v.count - o.count };
});
const total = rows.reduce((s, r) => s + r.size, 0);
console.log(`grew ${(total / 1024 / 1024).toFixed(1)} MB: ${(total / per).toFixed(0)} bytes per unit (${per} units)`);
for (const r of rows.sort((x, y) => y.size - x.size).slice(0, top)) {
  console.log(`${(r.size / per).toFixed(0).padStart(8)} B  ${(r.count / per).toFixed(2).padStart(7)} objects  ${r.name}`);
}
