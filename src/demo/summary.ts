// What the demo prints at the end: per-call statuses and latencies it measured itself, and a
// per-route table read back from the sidecars' own /metrics.

import http from 'node:http';

interface Series {
  readonly latenciesMs: number[];
  readonly statuses: Map<number, number>;
  errors: number;
}

export class LatencyRecorder {
  private readonly series = new Map<string, Series>();

  async time(name: string, call: () => Promise<{ status: number }>): Promise<void> {
    let entry = this.series.get(name);
    if (!entry) {
      entry = { latenciesMs: [], statuses: new Map(), errors: 0 };
      this.series.set(name, entry);
    }
    const started = process.hrtime.bigint();
    try {
      const { status } = await call();
      entry.latenciesMs.push(Number(process.hrtime.bigint() - started) / 1e6);
      entry.statuses.set(status, (entry.statuses.get(status) ?? 0) + 1);
    } catch {
      entry.errors++;
    }
  }

  total(): number {
    let sum = 0;
    for (const s of this.series.values()) sum += s.latenciesMs.length + s.errors;
    return sum;
  }

  entries(): ReadonlyMap<string, Series> {
    return this.series;
  }
}

/**
 * Lines of a table whose columns are as wide as their widest cell (header included), so a long
 * route such as /orders/{id}/invoice does not push its row out of line. `right`: the columns
 * of numbers, aligned right.
 */
export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>, right: ReadonlySet<number> = new Set()): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (right.has(i) ? cell.padStart(widths[i] as number) : i === cells.length - 1 ? cell : cell.padEnd(widths[i] as number)))
      .join('  ');
  return [line(header), ...rows.map(line)];
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number);
}

export function printTrafficSummary(recorder: LatencyRecorder, extra: { policyStatus: number; policyBody: string; noCert: string }): void {
  console.log('\n=== traffic through the mesh (measured by the demo client) ===');
  const rows = [...recorder.entries()].map(([name, s]) => {
    const sorted = [...s.latenciesMs].sort((a, b) => a - b);
    const statuses = [...s.statuses].map(([code, count]) => `${code}×${count}`).join(' ') + (s.errors ? ` err×${s.errors}` : '');
    return [name, String(sorted.length + s.errors), statuses, percentile(sorted, 50).toFixed(2), percentile(sorted, 99).toFixed(2)];
  });
  for (const line of formatTable(['call', 'count', 'statuses', 'p50 ms', 'p99 ms'], rows, new Set([1, 3, 4]))) console.log(line);
  let code = '';
  try {
    code = (JSON.parse(extra.policyBody) as { error?: string }).error ?? '';
  } catch {
    code = extra.policyBody.slice(0, 60);
  }
  console.log(`\npolicy: DELETE /orders/7 from frontend → ${extra.policyStatus} ${code} (orders allows frontend only GET and POST)`);
  console.log(`TLS without a client certificate to the orders sidecar → ${extra.noCert}`);
}

/** The text of an admin endpoint ('' when it cannot be reached). */
function adminGet(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      })
      .on('error', () => resolve(''));
  });
}

interface RouteRow {
  direction: string;
  peer: string;
  method: string;
  route: string;
  count: number;
  sumSeconds: number;
  codes: Map<string, number>;
}

function labelsOf(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1] as string] = m[2] as string;
  return labels;
}

/** Per route, from the sidecars' own meshcar_requests_total and duration sums. */
export async function printRouteTable(sidecars: ReadonlyArray<{ name: string; port: number }>): Promise<void> {
  console.log('\n=== per route, from the sidecars\' own /metrics ===');
  const table: string[][] = [];
  for (const sidecar of sidecars) {
    const text = await adminGet(sidecar.port, '/metrics');
    const rows = new Map<string, RouteRow>();
    const rowFor = (l: Record<string, string>) => {
      const key = `${l.direction}|${l.peer}|${l.method}|${l.route}`;
      let row = rows.get(key);
      if (!row) {
        row = { direction: l.direction ?? '', peer: l.peer ?? '', method: l.method ?? '', route: l.route ?? '', count: 0, sumSeconds: 0, codes: new Map() };
        rows.set(key, row);
      }
      return row;
    };
    for (const line of text.split('\n')) {
      const counter = /^meshcar_requests_total\{(.*)\} (\S+)$/.exec(line);
      if (counter) {
        const l = labelsOf(counter[1] as string);
        const row = rowFor(l);
        row.count += Number(counter[2]);
        row.codes.set(l.code ?? '?', (row.codes.get(l.code ?? '?') ?? 0) + Number(counter[2]));
      }
      const sum = /^meshcar_request_duration_seconds_sum\{(.*)\} (\S+)$/.exec(line);
      if (sum) rowFor(labelsOf(sum[1] as string)).sumSeconds += Number(sum[2]);
    }
    for (const row of rows.values()) {
      if (row.count === 0) continue;
      const codes = [...row.codes].map(([c, n]) => `${c}×${n}`).join(' ');
      table.push([sidecar.name, row.direction, row.peer, row.method, row.route, String(row.count), ((row.sumSeconds / row.count) * 1000).toFixed(2), codes]);
    }
  }
  for (const line of formatTable(['sidecar', 'dir', 'peer', 'method', 'route', 'count', 'mean ms', 'codes'], table, new Set([5, 6]))) console.log(line);
}

interface DiscoveredOperation {
  readonly responses?: Record<string, unknown>;
  readonly 'x-meshcar-calls'?: number;
  readonly 'x-meshcar-callers'?: string[];
  readonly 'x-meshcar-documented'?: boolean;
}

/** The API as used, from the sidecar's GET /endpoints?format=openapi: one line per operation. */
export async function printDiscoveredApi(port: number): Promise<void> {
  const text = await adminGet(port, '/endpoints?format=openapi');
  const doc = JSON.parse(text || '{}') as { paths?: Record<string, Record<string, DiscoveredOperation>> };
  console.log(`\n=== the orders API as discovered (http://127.0.0.1:${port}/endpoints?format=openapi, OpenAPI 3.1) ===`);
  const rows: string[][] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      const answered = Object.keys(op.responses ?? {}).filter((s) => s !== 'default').join(' ') || '-';
      const documented = op['x-meshcar-documented'] === undefined ? '?' : op['x-meshcar-documented'] ? 'yes' : 'NO';
      rows.push([method.toUpperCase(), path, String(op['x-meshcar-calls'] ?? 0), documented, answered, (op['x-meshcar-callers'] ?? []).join(', ') || '-']);
    }
  }
  for (const line of formatTable(['method', 'path', 'calls', 'documented', 'answered', 'callers'], rows, new Set([2]))) console.log(line);
}
