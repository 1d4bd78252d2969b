// An endpoint written NAME:PORT, without `dns:`, is a host name all the same: resolved to every
// address and looked up again every dnsRefresh, as the README says (it used to say nothing, and
// its config comment read as if only dns:NAME:PORT followed the records). And an absolute name,
// dns:NAME.:PORT, reaches the resolver with its trailing dot.

import t from 'tap';
import { pino } from 'pino';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import { EndpointSet } from '../../src/outbound/endpoints.js';
import type { LookupAll } from '../../src/outbound/index.js';
import { waitFor } from '../helpers/movable-clock.js';

t.test('orders.internal:443 follows its records as dns:orders.internal:443 does', async (t) => {
  for (const text of ['orders.internal:443', 'dns:orders.internal:443']) {
    let records = [
      { address: '10.0.0.1', family: 4 },
      { address: '10.0.0.2', family: 4 },
    ];
    const asked: string[] = [];
    const lookup: LookupAll = async (name) => {
      asked.push(name);
      return records;
    };
    const set = new EndpointSet([parseEndpoint(text) as Endpoint], { refreshMs: 100, decayMs: 10_000, logger: pino({ level: 'silent' }), lookup });
    t.teardown(() => set.stop());
    await set.start();
    t.same(set.all().map((e) => e.key), ['10.0.0.1:443', '10.0.0.2:443'], `${text}: every address`);
    records = [{ address: '10.0.0.3', family: 4 }];
    t.ok(await waitFor(() => set.all()[0]?.key === '10.0.0.3:443', 3000), `${text}: looked up again`);
    t.same(new Set(asked), new Set(['orders.internal']));
    set.stop();
  }
});

t.test('dns:NAME.:PORT, an absolute name, is looked up with its trailing dot', async (t) => {
  const asked: string[] = [];
  const lookup: LookupAll = async (name) => {
    asked.push(name);
    return [{ address: '10.0.0.4', family: 4 }];
  };
  const set = new EndpointSet([parseEndpoint('dns:orders.default.svc.cluster.local.:15443') as Endpoint], { refreshMs: 60_000, decayMs: 10_000, logger: pino({ level: 'silent' }), lookup });
  t.teardown(() => set.stop());
  await set.start();
  t.same(asked, ['orders.default.svc.cluster.local.'], 'as written: no search domain is tried first');
  t.same(set.all().map((e) => e.key), ['10.0.0.4:15443']);
});
