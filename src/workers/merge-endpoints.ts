// GET /endpoints with workers > 1: each worker saw part of the traffic, so the primary merges
// their inventories. A row is one (direction, peer, method, route): counts, errors and schema
// violations add up, lastSeen is the latest, status codes are the union.

import type { EndpointView } from '../metrics/traffic-metrics.js';
import type { DiscoveryRow } from '../metrics/discovery.js';
import type { WorkerEndpoints } from './messages.js';

type Row = Pick<EndpointView, 'direction' | 'peer' | 'method' | 'route'>;

const keyOf = (row: Row): string => JSON.stringify([row.direction, row.peer, row.method, row.route]);

function mergeBy<T extends Row>(rows: Iterable<T>, combine: (a: T, b: T) => T): T[] {
  const merged = new Map<string, T>();
  for (const row of rows) {
    const key = keyOf(row);
    const seen = merged.get(key);
    merged.set(key, seen ? combine(seen, row) : row);
  }
  return [...merged.values()];
}

function endpointRow(a: EndpointView, b: EndpointView): EndpointView {
  const violations = a.violations === undefined && b.violations === undefined ? {} : { violations: (a.violations ?? 0) + (b.violations ?? 0) };
  return { ...a, count: a.count + b.count, errors: a.errors + b.errors, lastSeen: a.lastSeen > b.lastSeen ? a.lastSeen : b.lastSeen, ...violations };
}

function discoveryRow(a: DiscoveryRow, b: DiscoveryRow): DiscoveryRow {
  return { ...a, count: a.count + b.count, responses: [...new Set([...a.responses, ...b.responses])].sort() };
}

export function mergeEndpoints(parts: readonly WorkerEndpoints[]): WorkerEndpoints {
  return {
    // most used first, as one sidecar lists them
    endpoints: mergeBy(parts.flatMap((p) => p.endpoints), endpointRow).sort((a, b) => b.count - a.count),
    discovery: mergeBy(parts.flatMap((p) => p.discovery), discoveryRow),
  };
}
