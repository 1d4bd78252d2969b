// Host-name lookups that fail: the last addresses stay in use, and the log says so once when
// the failures start, then at most once a minute while they go on, and once (info) when the
// name resolves again; not once per failed lookup, which was a warn line per name every
// dnsRefresh for as long as DNS was out.

import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { EndpointSet } from '../../src/outbound/endpoints.js';
import { LookupOutages } from '../../src/outbound/lookup-outages.js';
import type { LookupAll } from '../../src/outbound/index.js';
import { waitFor } from '../helpers/movable-clock.js';

interface Line {
  readonly level: number;
  readonly msg: string;
  readonly failures?: number;
}

function captured(): { lines: Line[]; logger: pino.Logger } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, sink) };
}

t.test('an outage of lookups: one warn line, the last addresses kept, one info line when it ends', async (t) => {
  const { lines, logger } = captured();
  let failing = false;
  let lookups = 0;
  const lookup: LookupAll = async () => {
    lookups += 1;
    if (failing) throw Object.assign(new Error('getaddrinfo EAI_AGAIN orders.internal'), { code: 'EAI_AGAIN' });
    return [{ address: '127.0.0.7', family: 4 }];
  };
  const set = new EndpointSet([{ host: 'orders.internal', port: 443 }], { refreshMs: 100, decayMs: 10_000, logger, lookup });
  t.teardown(() => set.stop());
  await set.start();
  t.same(set.all().map((e) => e.key), ['127.0.0.7:443']);

  failing = true;
  const before = lookups;
  t.ok(await waitFor(() => lookups >= before + 8, 5000), 'eight lookups failed');
  t.same(set.all().map((e) => e.key), ['127.0.0.7:443'], 'the last address is kept');
  const warns = lines.filter((l) => l.level === 40);
  t.equal(warns.length, 1, `one warn line for the outage (${warns.length})`);
  t.match(warns[0]?.msg, /could not resolve an upstream endpoint; keeping its last addresses/);

  failing = false;
  t.ok(await waitFor(() => lines.some((l) => /resolves again/.test(l.msg)), 5000), 'the end of the outage is said');
  const back = lines.find((l) => /resolves again/.test(l.msg));
  t.equal(back?.level, 30);
  t.ok((back?.failures ?? 0) >= 8, `with how many lookups failed (${back?.failures})`);
  const settled = lines.length;
  t.ok(await waitFor(() => lookups >= before + 14, 5000));
  t.equal(lines.length, settled, 'lookups that answer log nothing');

  failing = true;
  t.ok(await waitFor(() => lines.filter((l) => l.level === 40).length === 2, 5000), 'a new outage is said again');
});

t.test('while the failures go on, a reminder at most once per period, with the count', async (t) => {
  const { lines, logger } = captured();
  const outages = new LookupOutages(logger, 200);
  const started = Date.now();
  for (let i = 0; i < 30 && Date.now() - started < 5000; i++) {
    outages.failed('orders.internal', 'getaddrinfo ENOTFOUND orders.internal');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const elapsed = Date.now() - started;
  const warns = lines.filter((l) => l.level === 40);
  t.ok(warns.length >= 2 && warns.length <= 1 + Math.ceil(elapsed / 200), `${warns.length} warn lines over ${elapsed} ms`);
  t.match(warns[1]?.msg, /still cannot resolve/);
  t.ok((warns[1]?.failures ?? 0) > 1, 'the reminder counts the failures');
});

t.test('a lookup of a name a reload replaced records nothing when it ends: no warning, no reason given for the new name', async (t) => {
  const { lines, logger } = captured();
  let failOld: (err: Error) => void = () => {};
  const lookup: LookupAll = (name) => {
    if (name === 'old.internal') return new Promise((_resolve, reject) => (failOld = reject));
    return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' }));
  };
  const set = new EndpointSet([{ host: 'old.internal', port: 443 }], { refreshMs: 60_000, decayMs: 10_000, logger, lookup });
  t.teardown(() => set.stop());
  const first = set.start();
  set.reconfigure([{ host: 'new.internal', port: 443 }]);
  t.ok(await waitFor(() => lines.length === 1, 2000), 'the new name failed');
  failOld(Object.assign(new Error('getaddrinfo EAI_AGAIN old.internal'), { code: 'EAI_AGAIN' }));
  await first;
  t.same(
    lines.map((l) => l.msg),
    ['could not resolve an upstream endpoint; keeping its last addresses'],
    'one warning, for the new name',
  );
  t.equal(set.noAddressReason(), 'the lookup of new.internal failed: getaddrinfo ENOTFOUND new.internal');
});

t.test('an answer of 0.0.0.0 or :: (a sinkhole) is never an endpoint: it would be dialled as this host', async (t) => {
  const { logger } = captured();
  let answer = [{ address: '127.0.0.7', family: 4 }, { address: '0.0.0.0', family: 4 }, { address: '::ffff:0.0.0.0', family: 6 }];
  let lookups = 0;
  const lookup: LookupAll = async () => {
    lookups += 1;
    return answer;
  };
  const set = new EndpointSet([{ host: 'orders.internal', port: 443 }], { refreshMs: 100, decayMs: 10_000, logger, lookup });
  t.teardown(() => set.stop());
  await set.start();
  t.same(set.all().map((e) => e.key), ['127.0.0.7:443'], 'the unspecified addresses left out');
  answer = [{ address: '::', family: 6 }];
  const before = lookups;
  t.ok(await waitFor(() => lookups >= before + 3, 5000), 'three lookups answered ::');
  t.same(set.all().map((e) => e.key), ['127.0.0.7:443'], 'an answer of only :: is a failed lookup: the last address is kept');
});
