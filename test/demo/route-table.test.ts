// The demo's per-route table, read from a real /metrics page over HTTP: every column starts at
// the same place on every line, however long a route template is (/orders/{id}/invoice used to
// push its row out of line).

import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { printRouteTable } from '../../src/demo/summary.js';

const METRICS = [
  'meshcar_requests_total{direction="inbound",peer="frontend",method="GET",route="/orders/{id}",code="200"} 12',
  'meshcar_requests_total{direction="inbound",peer="frontend",method="POST",route="/orders/{id}/invoice",code="201"} 3',
  'meshcar_requests_total{direction="inbound",peer="spiffe://mesh.local/svc/a-long-peer",method="DELETE",route="/x",code="403"} 1',
  'meshcar_request_duration_seconds_sum{direction="inbound",peer="frontend",method="GET",route="/orders/{id}",status_class="2xx"} 0.024',
  '',
].join('\n');

t.test('columns are as wide as their widest cell', async (t) => {
  const server = http.createServer((_req, res) => res.end(METRICS));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const printed: string[] = [];
  const log = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    await printRouteTable([{ name: 'orders sidecar', port: (server.address() as AddressInfo).port }]);
  } finally {
    console.log = log;
  }
  const lines = printed.filter((l) => !l.includes('==='));
  t.equal(lines.length, 4, printed.join('\n'));
  // where each column starts: from the header, then the same on every row
  const header = lines[0] as string;
  for (const name of ['dir', 'peer', 'method', 'route']) {
    const at = header.indexOf(name);
    for (const row of lines.slice(1)) t.equal(row[at - 1], ' ', `${name} starts after a space: ${row}`);
    for (const row of lines.slice(1)) t.not(row[at], ' ', `${name} starts at column ${at}: ${row}`);
  }
  // count and mean are right-aligned: they end where their header ends
  for (const name of ['count', 'mean ms']) {
    const end = header.indexOf(name) + name.length;
    for (const row of lines.slice(1)) t.match(row.slice(0, end), /\d$/, `${name} ends at column ${end}: ${row}`);
  }
  t.match(lines[2], /\/orders\/\{id\}\/invoice\s+3\s/);
});
