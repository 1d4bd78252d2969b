// The process's lookup scheduler (src/name-lookups.ts) on its own, with a resolver
// whose answers the test gives by hand and a clock it moves: one lookup per name, a thread
// always left free, slow names never taking the last thread names that answer need, and names
// that answer going first. The real resolver hung for real is test/outbound/dns-hung-resolver.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { connectionLookup, lookupThreads, NameLookups, SLOW_LOOKUP_MS } from '../src/name-lookups.js';

type Answer = ReadonlyArray<{ address: string; family: number }>;

/** A caller that does not look at the outcome (failures are the resolver's, told by hand). */
const quiet = (lookup: Promise<unknown>) => void lookup.catch(() => undefined);

/** A resolver that answers when told: the names asked, in order, and a way to answer each. */
function handResolver() {
  const asked: string[] = [];
  const pending = new Map<string, { resolve: (a: Answer) => void; reject: (e: Error) => void }>();
  const resolver = (host: string) => new Promise<Answer>((resolve, reject) => {
    asked.push(host);
    pending.set(host, { resolve, reject });
  });
  const answer = async (host: string) => {
    pending.get(host)?.resolve([{ address: '192.0.2.1', family: 4 }]);
    pending.delete(host);
    await new Promise((r) => setImmediate(r));
  };
  const fail = async (host: string) => {
    pending.get(host)?.reject(new Error('ETIMEOUT'));
    pending.delete(host);
    await new Promise((r) => setImmediate(r));
  };
  return { resolver, asked, answer, fail, running: () => [...pending.keys()] };
}

t.test('libuv lookup threads: half the pool, rounded up; unset or unusable is 4 threads', async (t) => {
  t.equal(lookupThreads(undefined), 2);
  t.equal(lookupThreads('4'), 2);
  t.equal(lookupThreads('16'), 8);
  t.equal(lookupThreads('1'), 1);
  t.equal(lookupThreads('5'), 3);
  t.equal(lookupThreads('abc'), 2);
  t.equal(lookupThreads('0'), 2);
  t.equal(lookupThreads('100000'), 512);
});

t.test('one lookup per name, whoever asks', async (t) => {
  const r = handResolver();
  const lookups = new NameLookups(r.resolver, 8);
  const a = lookups.lookup('orders.mesh');
  const b = lookups.lookup('orders.mesh');
  t.same(r.asked, ['orders.mesh'], 'asked once');
  await r.answer('orders.mesh');
  t.same(await a, await b, 'both callers have the answer');
  const c = lookups.lookup('orders.mesh');
  t.same(r.asked, ['orders.mesh', 'orders.mesh'], 'a later request asks again');
  const refused = t.rejects(c, /ETIMEOUT/, 'a failure reaches the caller');
  await r.fail('orders.mesh');
  await refused;
});

t.test('one thread is always left to the rest of the process', async (t) => {
  const r = handResolver();
  const lookups = new NameLookups(r.resolver, 2);
  quiet(lookups.lookup('a'));
  quiet(lookups.lookup('b'));
  t.same(r.running(), ['a'], 'with 2 threads, one lookup at a time');
  t.same(lookups.load(), { running: 1, waiting: 1 });
  await r.answer('a');
  t.same(r.running(), ['b'], 'the next one when it answers');
  const four = new NameLookups(handResolver().resolver, 8);
  for (const name of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']) quiet(four.lookup(name));
  t.same(four.load(), { running: 7, waiting: 2 }, 'with 8 threads, 7 at once');
});

t.test('slow names leave a thread to names that answer, and wait behind them', async (t) => {
  const r = handResolver();
  let now = 0;
  const lookups = new NameLookups(r.resolver, 4, () => now);
  // three names hang for good: they take the 3 threads lookups may use at first
  for (const name of ['hung1', 'hung2', 'hung3']) quiet(lookups.lookup(name));
  now += SLOW_LOOKUP_MS;
  quiet(lookups.lookup('good'));
  t.same(r.running(), ['hung1', 'hung2', 'hung3'], 'no thread is free yet');
  // one hung lookup gives up its thread: the name that answers takes it
  await r.fail('hung1');
  t.same(r.running(), ['hung2', 'hung3', 'good'], 'good got the thread');
  quiet(lookups.lookup('hung1'));
  t.same(lookups.load(), { running: 3, waiting: 1 }, 'hung1 asked again waits');
  await r.answer('good');
  t.same(r.running(), ['hung2', 'hung3'], 'the slow names already hold 2 threads of 3: hung1 waits still');
  quiet(lookups.lookup('good'));
  t.same(r.running(), ['hung2', 'hung3', 'good'], 'a name that answers still finds a thread');
  await r.answer('good');
  await r.fail('hung2');
  t.same(r.running(), ['hung3', 'hung1'], 'once a slow one ends, a waiting slow one takes its place');
  t.same(lookups.load(), { running: 2, waiting: 0 });
});

t.test("connectionLookup: Node's lookup option through the scheduler, one address or all, by family", async (t) => {
  const lookups = new NameLookups(async (host) => (host === 'both.test' ? [{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }] : []), 2);
  const lookup = connectionLookup(lookups);
  const ask = (host: string, options: object) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family?: number }>((resolve) => lookup(host, options, (err, address, family) => resolve({ err, address, family })));
  t.same(await ask('both.test', { all: true }), { err: null, address: [{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }], family: undefined }, 'all, in the order answered');
  t.same(await ask('both.test', {}), { err: null, address: '::1', family: 6 }, 'the first');
  t.same(await ask('both.test', { family: 4 }), { err: null, address: '127.0.0.1', family: 4 }, 'IPv4 only');
  t.same(await ask('both.test', { family: 'IPv6', all: true }), { err: null, address: [{ address: '::1', family: 6 }], family: undefined }, 'IPv6 only, all');
  const none = await ask('none.test', {});
  t.equal(none.err?.code, 'ENOTFOUND', 'no address: ENOTFOUND, as getaddrinfo says');
  // a real connection with it: the name /etc/hosts gives
  const server = net.createServer((socket) => socket.end('hi')).listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const socket = net.connect({ host: 'localhost', port: (server.address() as net.AddressInfo).port, lookup: connectionLookup(), family: 4 });
  const [data] = (await once(socket, 'data')) as [Buffer];
  t.equal(data.toString(), 'hi', 'a connection to localhost through the process scheduler');
});
