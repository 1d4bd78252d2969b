// The README's metrics table is the reference of what /metrics exports: every family the
// registry declares (src/metrics/registry.ts, and the workers' own in
// src/workers/cluster-metrics.ts) has its row with its type and its labels in order, every row
// names a family that exists, and the rows marked as traffic families are the ones
// `metrics.requests` switches (src/metrics/traffic-families.ts).

import t from 'tap';
import { readFile } from 'node:fs/promises';
import { Metrics } from '../../src/metrics/registry.js';
import { trafficFamilyNames } from '../../src/metrics/traffic-families.js';

const ROOT = new URL('../../', import.meta.url);

interface Row {
  readonly type: string;
  readonly labels: readonly string[];
  readonly traffic: boolean;
}

/** The table's rows: `| \`name\` | type | \`label\`, \`label\` (values) | exported by |`. */
function tableRows(readme: string): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const [, name, type, labels, by] of readme.matchAll(/^\| `(meshcar_[a-z0-9_]+)` \| ([a-z]+) \| ([^|]+) \| ([^|]+) \|$/gm)) {
    // a label is a backticked word outside parentheses (those hold its values)
    const names = (labels as string).replace(/\([^)]*\)/g, '').match(/`[a-z_]+`/g) ?? [];
    rows.set(name as string, { type: type as string, labels: names.map((l) => l.slice(1, -1)), traffic: (by as string).includes('(¹)') });
  }
  return rows;
}

interface Family {
  readonly type: string;
  readonly labels: readonly string[];
}

async function declaredFamilies(): Promise<Map<string, Family>> {
  const families = new Map<string, Family>();
  const metrics = new Metrics({ processMetrics: false });
  for (const family of metrics.registry.getMetricsAsArray() as unknown as { name: string; type: string; labelNames: string[] }[]) {
    families.set(family.name, { type: family.type, labels: family.labelNames });
  }
  // the primary's families with workers > 1: unlabelled counters and gauges
  const cluster = await readFile(new URL('src/workers/cluster-metrics.ts', ROOT), 'utf8');
  t.notMatch(cluster, /labelNames/, 'the workers families carry no labels (else this test must read them)');
  for (const [, kind, name] of cluster.matchAll(/new client\.(Counter|Gauge)\(\{\s*name: '(meshcar_[a-z0-9_]+)'/g)) {
    families.set(name as string, { type: (kind as string).toLowerCase(), labels: [] });
  }
  return families;
}

t.test('every family is in the README table with its type and labels, and every row is a family', async (t) => {
  const rows = tableRows(await readFile(new URL('README.md', ROOT), 'utf8'));
  const families = await declaredFamilies();
  t.ok(families.size >= 35, `${families.size} families declared`);
  for (const [name, family] of families) {
    const row = rows.get(name);
    if (!t.ok(row, `${name} has a row in the README's metrics table`)) continue;
    t.equal(row?.type, family.type, `${name} is a ${family.type}`);
    t.same(row?.labels, family.labels, `${name}'s labels: ${family.labels.join(', ') || 'none'}`);
  }
  for (const name of rows.keys()) t.ok(families.has(name), `the row ${name} names a family meshcar declares`);
});

t.test('the rows marked (¹) are the families metrics.requests switches', async (t) => {
  const rows = tableRows(await readFile(new URL('README.md', ROOT), 'utf8'));
  const traffic = trafficFamilyNames(new Metrics({ processMetrics: false }));
  for (const [name, row] of rows) t.equal(row.traffic, traffic.has(name), `${name} ${traffic.has(name) ? 'is' : 'is not'} a traffic family`);
});
