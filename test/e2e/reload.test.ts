// Live reload as an operator does it: edit the config file, then SIGHUP (or POST /reload on
// the admin port). A broken file changes nothing and is reported as `meshcar check` reports
// it; a valid one reaches new requests while in-flight requests and open sessions carry on;
// what cannot change live (listener addresses) is named and keeps running as it was.

import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { constants as fsConstants } from 'node:fs';
import { open, readFile, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileAsync } from '../helpers/ca.js';
import { freePort } from '../helpers/process.js';
import { metricValue, startSidecar, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { connectionsTo, onlyConnectionTo, openCount } from '../helpers/connections.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const AUTHORIZE = ['  authorize:', '    - from: [spiffe://mesh.local/svc/frontend]', '      paths: [/headers, /slow]'].join('\n');

const mesh = meshFixture(t);

function postReload(port: number): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/reload', method: 'POST', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function editConfig(sidecar: RunningSidecar, from: string | RegExp, to: string): Promise<string> {
  const before = await readFile(sidecar.configFile, 'utf8');
  const after = before.replace(from, to);
  if (after === before) throw new Error(`config edit did not apply: ${String(from)}`);
  await writeFile(sidecar.configFile, after);
  return before;
}

const isOutcome = (line: Record<string, unknown>): boolean => line.component === 'reload' && (line.msg === 'config reloaded' || String(line.msg).startsWith('config reload failed'));

/**
 * Sends SIGHUP and waits for the reload's outcome in the log. The outcome lines of reloads
 * already counted are waited for first: a POST /reload's answer can reach the test before its
 * log line does, and that late line would be taken for this reload's outcome (seen in CI: the
 * test then edited the file while the SIGHUP's reload was still to read it).
 */
async function hangUp(sidecar: RunningSidecar): Promise<Record<string, unknown>> {
  const metrics = (await sidecar.admin('/metrics')).body;
  const counted = (metricValue(metrics, 'meshcar_config_reloads_total{result="success"}') ?? 0) + (metricValue(metrics, 'meshcar_config_reloads_total{result="failure"}') ?? 0);
  await waitFor(async () => sidecar.process.lines.filter(isOutcome).length >= counted, 10_000, `the log lines of the ${counted} reloads counted so far`);
  const seen = sidecar.process.lines.length;
  sidecar.process.child.kill('SIGHUP');
  return sidecar.process.waitFor((line) => sidecar.process.lines.indexOf(line) >= seen && isOutcome(line));
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** `namedPorts`: the orders config names its listen ports (for a test that edits one in the file). */
async function pair(namedPorts = false): Promise<{ orders: RunningSidecar; frontend: RunningSidecar }> {
  const orders = await startSidecar(mesh.ca, { service: 'orders', namedPorts, inbound: { app: `http://127.0.0.1:${mesh.app.port}`, timeout: '10s', authorize: AUTHORIZE } });
  const frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders', timeout: '10s' }] });
  return { orders, frontend };
}

// Every test starts its own sidecars (port 0, own config files, own request ids at the shared
// echo app), so they run side by side: most of their time is waiting (a held request, a
// timeout, /metrics, whose renders start at least 1 s apart), not work.
t.jobs = 3;

// the two broken-file cases share one pair: a refused reload leaves the sidecar as it was (what
// the first case checks), and the file is put back before the second
t.test('a broken file changes nothing', async (t) => {
  const { orders, frontend } = await pair();
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  const original = await readFile(orders.configFile, 'utf8');
  await t.test('SIGHUP with a broken file keeps serving with the old config', async (t) => {
    const call = () => request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders' } });
    t.equal((await call()).status, 200);

    // a bad duration and a lower-case method: two issues, each with file:line:column
    await editConfig(orders, 'timeout: 10s', 'timeout: 10x');
    await editConfig(orders, 'paths: [/headers, /slow]', 'paths: [/headers, /slow]\n      methods: [get]');
    const outcome = await hangUp(orders);
    t.match(outcome.msg, /config reload failed/);
    t.equal(outcome.level, 50, 'at error level');

    const check = await execFileAsync(process.execPath, [CLI, 'check', '--config', orders.configFile]).then(
      () => ({ stderr: '' }),
      (err: { stderr: string }) => ({ stderr: err.stderr }),
    );
    const expected = check.stderr.trim().split('\n');
    t.equal(expected.length, 2, 'meshcar check finds two issues');
    const logged = orders.process.lines.filter((line) => line.component === 'reload' && line.level === 50 && typeof line.msg === 'string' && line.msg.startsWith(orders.configFile)).map((line) => line.msg);
    t.same(logged, expected, 'the same lines as meshcar check, one log line each');
    t.match(logged[0], new RegExp(`^${orders.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: inbound\\.timeout: `));

    t.equal((await call()).status, 200, 'still serving');
    const config = JSON.parse((await orders.admin('/config')).body) as { inbound: { timeout: string } };
    t.equal(config.inbound.timeout, '10s', 'the running config is unchanged');
    t.equal(orders.process.child.exitCode, null, 'still running');
  });
  await writeFile(orders.configFile, original);
  await t.test('POST /reload with an invalid file answers 400 JSON and changes nothing', async (t) => {
    await editConfig(orders, 'paths: [/headers, /slow]', 'paths: [/slow]');
    await editConfig(orders, 'level: info', 'level: loud');
    const res = await postReload(orders.adminPort);
    t.equal(res.status, 400);
    t.match(res.type, /application\/json/);
    const body = JSON.parse(res.body) as { error: string; message: string };
    t.equal(body.error, 'config_invalid');
    t.match(body.message, `${orders.configFile}:`);
    t.match(body.message, /log\.level: "loud" is not a log level/);
    t.equal((await request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders' } })).status, 200, 'the valid policy change in the same file was not applied');
  });
});

t.test('a file for another trust domain or service is refused whole: 400, nothing applied, callers still allowed', async (t) => {
  const { orders, frontend } = await pair();
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  const call = () => request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders' } });
  t.equal((await call()).status, 200);
  const original = await readFile(orders.configFile, 'utf8');
  const configBefore = (await orders.admin('/config')).body;

  // consistent on its own: the live keys name SPIFFE IDs in the new trust domain
  await editConfig(orders, 'trustDomain: mesh.local', 'trustDomain: other.local');
  await editConfig(orders, 'spiffe://mesh.local/svc/frontend', 'spiffe://other.local/svc/frontend');
  await editConfig(orders, 'level: info', 'level: debug');
  const res = await postReload(orders.adminPort);
  t.equal(res.status, 400, res.body);
  t.match(res.type, /application\/json/);
  const body = JSON.parse(res.body) as { error: string; message: string };
  t.equal(body.error, 'config_invalid');
  t.match(body.message, `${orders.configFile}: trustDomain: changed from mesh.local to other.local, which needs a restart`);
  t.match(body.message, /nothing was applied/);
  // orders has an inbound.authorize and no outbound: only the key the file has is named
  t.match(body.message, "which needs a restart (the sidecar's own SPIFFE ID and the trust it accepts are in it, and the SPIFFE IDs this file's inbound.authorize names are checked against it); nothing was applied");
  t.equal((await orders.admin('/config')).body, configBefore, '/config is unchanged: authorize, log level and all');
  t.equal((await call()).status, 200, 'the caller in the running trust domain is still allowed');

  await writeFile(orders.configFile, original.replace('service: orders', 'service: billing'));
  const service = await hangUp(orders);
  t.match(service.msg, /config reload failed/, 'SIGHUP: the same refusal');
  t.ok(orders.process.lines.some((line) => line.component === 'reload' && String(line.msg).startsWith(`${orders.configFile}: service: changed from orders to billing, which needs a restart (it makes the sidecar's own SPIFFE ID spiffe://mesh.local/svc/billing, which its certificate carries); nothing was applied`)), 'logged, naming service and why (no live key is checked against it)');
  t.equal((await orders.admin('/config')).body, configBefore);
  await writeFile(orders.configFile, original);
  t.equal((await postReload(orders.adminPort)).status, 200, 'the file put back reloads');
});

t.test('SIGHUP with a new policy: the next request sees it, in-flight requests and sessions carry on', async (t) => {
  const { orders, frontend } = await pair();
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  const call = (path: string) => request(frontend.outboundPort, { path, headers: { host: 'orders' } });
  t.equal((await call('/headers')).status, 200, 'allowed by the first policy');
  const sessions = async () => metricValue((await frontend.admin('/metrics')).body, 'meshcar_upstream_sessions{upstream="orders"}');
  t.equal(await sessions(), 1, 'one session between the sidecars');
  // the gauge reads 1 after a reconnect too: the session is known by its TCP connection
  const session = await onlyConnectionTo(frontend.process.child.pid as number, orders.inboundPort);

  // held at the app until the reload has been seen to apply
  const slow = request(frontend.outboundPort, { path: '/slow?hold', headers: { host: 'orders', 'x-request-id': 'reload-policy-slow' } });
  await waitFor(async () => mesh.app.seen.some((h) => h['x-request-id'] === 'reload-policy-slow'), 10_000, 'the slow request at the app');
  await editConfig(orders, 'paths: [/headers, /slow]', 'paths: [/slow]');
  const outcome = await hangUp(orders);
  t.equal(outcome.msg, 'config reloaded');
  t.same(outcome.applied, ['inbound.authorize']);
  t.same(outcome.restartRequired, []);

  const denied = await call('/headers');
  t.equal(denied.status, 403, 'the next request meets the new policy');
  t.equal(denied.headers['x-meshcar-error'], 'forbidden');
  mesh.app.release('reload-policy-slow');
  const late = await slow;
  t.equal(late.status, 200, 'the in-flight request finished');
  t.equal(late.body.toString(), 'late');
  t.equal(await sessions(), 1, 'one session still');
  t.same(await connectionsTo(frontend.process.child.pid as number, orders.inboundPort), [session], 'the same HTTP/2 session (same connection) stayed up');
  const config = JSON.parse((await orders.admin('/config')).body) as { inbound: { authorize: Array<{ paths: string[] }> } };
  t.same(config.inbound.authorize[0]?.paths, ['/slow'], '/config shows the new policy');
});

t.test('SIGHUP shortens the inbound timeout for the next request', async (t) => {
  const { orders, frontend } = await pair();
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  const call = (path: string) => request(frontend.outboundPort, { path, headers: { host: 'orders' } });
  t.equal((await call('/slow?ms=1000')).status, 200, 'a 1 s answer fits the 10 s timeout');
  await editConfig(orders, 'timeout: 10s', 'timeout: 500ms');
  const outcome = await hangUp(orders);
  t.same(outcome.applied, ['inbound.timeout']);
  const cut = await call('/slow?ms=1000');
  t.equal(cut.status, 504, 'the next request meets the new timeout');
  t.equal(cut.headers['x-meshcar-error'], 'upstream_timeout');
});

t.test('SIGHUP adds an inbound rate limit that the next requests meet', async (t) => {
  const { orders, frontend } = await pair();
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  const call = () => request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders' } });
  t.same(await Promise.all([call(), call(), call()]).then((r) => r.map((x) => x.status)), [200, 200, 200]);
  await editConfig(orders, AUTHORIZE, `${AUTHORIZE}\n  rateLimit:\n    perIdentity: {rate: 1/m, burst: 2}`);
  const outcome = await hangUp(orders);
  t.same(outcome.applied, ['inbound.rateLimit']);
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await call()).status);
  t.same(statuses, [200, 200, 429, 429], 'burst of two, then 429');
  const limited = await call();
  t.equal(limited.headers['x-meshcar-error'], 'rate_limited');
  t.ok(Number(limited.headers['retry-after']) >= 1, 'with Retry-After');

  // a reload that adds a total leaves the caller's own limit as it was, and its bucket empty
  await editConfig(orders, 'perIdentity: {rate: 1/m, burst: 2}', 'perIdentity: {rate: 1/m, burst: 2}\n    total: {rate: 100/s}');
  t.same((await hangUp(orders)).applied, ['inbound.rateLimit.total']);
  t.equal((await call()).status, 429, 'the caller held back by its own limit stays held back');
  // a changed limit is named by its YAML key and starts with a full bucket
  await editConfig(orders, 'perIdentity: {rate: 1/m, burst: 2}', 'perIdentity: {rate: 2/m, burst: 2}');
  t.same((await hangUp(orders)).applied, ['inbound.rateLimit.perIdentity.rate'], 'named as in the YAML (rate, not perSecond)');
  t.equal((await call()).status, 200, 'the changed limit starts full');
});

t.test('POST /reload: a listener address is reported as needing a restart and keeps running', async (t) => {
  const { orders, frontend } = await pair(true);
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  // a port nothing listens on, for the edited file to name: it is never bound (a restart would)
  const newPort = await freePort();
  await editConfig(orders, `listen: 127.0.0.1:${orders.inboundPort}`, `listen: 127.0.0.1:${newPort}`);
  await editConfig(orders, 'level: info', 'level: debug');
  await editConfig(orders, 'access: false', 'access: true');
  const res = await postReload(orders.adminPort);
  t.equal(res.status, 200);
  t.match(res.type, /application\/json/);
  t.same(JSON.parse(res.body), { applied: ['log.level', 'log.access'], restartRequired: ['inbound.listen'] });
  const warning = await orders.process.waitFor((line) => line.component === 'reload' && line.keyPath === 'inbound.listen');
  t.match(warning.msg, /inbound\.listen.*needs a restart/);

  t.ok(await connects(orders.inboundPort), 'still listening on the old address');
  t.notOk(await connects(newPort), 'not on the new one');
  t.equal((await request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders' } })).status, 200);
  const access = await orders.process.waitFor((line) => line.component === 'access' && line.path === '/headers');
  t.equal(access.status, 200, 'the access log, switched on live, writes the next request');
  const config = JSON.parse((await orders.admin('/config')).body) as { inbound: { listen: string }; log: { level: string } };
  t.equal(Number(config.inbound.listen.split(':').pop()), orders.inboundPort, '/config shows the address really in use');
  t.equal(config.log.level, 'debug', 'and the new log level');

  const again = await postReload(orders.adminPort);
  t.same(JSON.parse(again.body), { applied: [], restartRequired: ['inbound.listen'] }, 'a reload with nothing new applies nothing');

  // a restart-only identity key naming a file that is not there: applied as before, but the
  // answer warns now of what the next start would fail on
  const missing = join(tmpdir(), `meshcar-missing-${process.pid}.pem`);
  await editConfig(orders, `    bundle: ${mesh.ca.bundlePath}`, `    bundle: ${missing}`);
  const warned = await postReload(orders.adminPort);
  t.equal(warned.status, 200);
  const body = JSON.parse(warned.body) as { restartRequired: string[]; warnings?: string[] };
  t.same(body.restartRequired, ['identity.ca.bundle', 'inbound.listen']);
  t.match(body.warnings, [new RegExp(`identity\\.ca\\.bundle: ${missing.replace(/[.]/g, '\\.')} does not exist`)], 'the missing bundle is named');
  await editConfig(orders, `    bundle: ${missing}`, `    bundle: ${mesh.ca.bundlePath}`);
  const get = await orders.admin('/reload');
  t.equal(get.status, 405, 'GET /reload is refused');
  const refused = await fetch(`http://127.0.0.1:${orders.adminPort}/reload`);
  await refused.arrayBuffer();
  t.equal(refused.headers.get('allow'), 'POST', 'with Allow: POST');
});

t.test('reloads are counted by result, and two at once are serialized', async (t) => {
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` } });
  t.teardown(() => orders.stop());
  const count = async (result: string) => metricValue((await orders.admin('/metrics')).body, `meshcar_config_reloads_total{result="${result}"}`);
  t.equal(await count('success'), 0);
  t.equal(await count('failure'), 0);

  // Two reloads at once, the first held up while it reads the file: the config file becomes a
  // named pipe, so a reload's read finishes only when the test writes to it. Serialized, the
  // second reload does not open the file until the first is done, and each applies the file it
  // read (the last one wins); side by side, both would read the pipe at the same time.
  const pid = orders.process.child.pid as number;
  const file = orders.configFile;
  const text = await readFile(file, 'utf8');
  await unlink(file);
  await execFileAsync('mkfifo', [file]);
  const holder = await open(file, fsConstants.O_RDWR); // a writer, so readers open without waiting
  let released = false;
  const release = async (content: string) => {
    if (released) return;
    released = true;
    await holder.write(content);
    await holder.close();
  };
  t.teardown(() => release(''));
  const first = postReload(orders.adminPort);
  await waitFor(async () => (await openCount(pid, file)) === 1, 10_000, 'the first reload reading the file');
  const second = new Promise<Awaited<ReturnType<typeof postReload>>>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: orders.adminPort, path: '/reload', method: 'POST', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
  // the admin server has taken the second request once a later request on it is answered
  t.equal((await orders.admin('/healthz')).status, 200);
  let readersAtOnce = 0;
  const watchUntil = Date.now() + 500;
  while (Date.now() < watchUntil && readersAtOnce < 2) {
    readersAtOnce = Math.max(readersAtOnce, await openCount(pid, file));
    await sleep(10);
  }
  t.equal(readersAtOnce, 1, 'while the first reload reads the file, the second does not open it');
  await release(text.replace('level: info', 'level: debug'));
  const one = await first;
  t.equal(one.status, 200, one.body);
  t.same(JSON.parse(one.body).applied, ['log.level'], 'the first reload applied what it read');
  if (readersAtOnce === 1) {
    // now the second reload opens the pipe and waits for its content
    await writeFile(file, text); // level: info again (a warn level would hide the outcome line)
    const two = await second;
    t.equal(two.status, 200, two.body);
    t.same(JSON.parse(two.body).applied, ['log.level'], 'the second reload applied what it read, after the first');
    t.equal((JSON.parse((await orders.admin('/config')).body) as { log: { level: string } }).log.level, 'info', 'the later reload wins');
  } else {
    await second.catch(() => undefined);
  }
  await unlink(file);
  await writeFile(file, text);
  await hangUp(orders);
  const original = await editConfig(orders, 'service: orders', 'service: [orders]');
  t.equal((await postReload(orders.adminPort)).status, 400);
  await writeFile(orders.configFile, original);
  t.equal(await count('success'), 3);
  t.equal(await count('failure'), 1);
  const outcomes = orders.process.lines.filter(isOutcome);
  t.equal(outcomes.length, 4, 'one outcome per reload');
});

t.test('a storm of POST /reload costs at most two reloads, and every request gets the answer', async (t) => {
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` } });
  t.teardown(() => orders.stop());
  const N = 20;
  const pid = orders.process.child.pid as number;
  const file = orders.configFile;
  // debug level: a request that joins a waiting reload says so, the test's evidence that it arrived
  await editConfig(orders, 'level: info', 'level: debug');
  await hangUp(orders);
  const text = await readFile(file, 'utf8');
  const outcomes = () => orders.process.lines.filter((line) => line.component === 'reload' && (line.msg === 'config reloaded' || String(line.msg).startsWith('config reload failed'))).length;
  const joined = () => orders.process.lines.filter((line) => line.component === 'reload' && line.msg === 'reload asked for while one runs: joins the next one').length;
  const before = { outcomes: outcomes(), joined: joined() };

  // the first reload is held while it reads the file: the config file becomes a named pipe
  await unlink(file);
  await execFileAsync('mkfifo', [file]);
  const holder = await open(file, fsConstants.O_RDWR);
  t.teardown(async () => {
    await holder.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
    await writeFile(file, text);
  });
  const first = postReload(orders.adminPort);
  await waitFor(async () => (await openCount(pid, file)) === 1, 10_000, 'the first reload reading the file');
  const rest = Array.from({ length: N - 1 }, () => postReload(orders.adminPort));
  await waitFor(async () => joined() - before.joined === N - 1, 10_000, `the other ${N - 1} requests waiting`);
  t.equal(await openCount(pid, file), 1, 'only the first reload reads the file meanwhile');
  await holder.write(text);
  await holder.close();
  t.equal((await first).status, 200, 'the first request: the first reload');
  // the second reload opens the pipe once the first has ended, and reads what is written now
  // (this write waits for that reader); bounded, as a third reload would wait for a writer for good
  const written = writeFile(file, text.replace('level: debug', 'level: info'));
  const answers = await Promise.race([Promise.all(rest), new Promise<never>((_, fail) => setTimeout(() => fail(new Error('no answer to every request within 10 s')), 10_000).unref())]);
  await written;
  t.same(
    answers.map((a) => [a.status, a.body]),
    answers.map(() => [200, JSON.stringify({ applied: ['log.level'], restartRequired: [] })]),
    `all ${N - 1} others: the second reload's answer`,
  );
  await waitFor(async () => outcomes() - before.outcomes === 2, 10_000, 'two reload outcomes');
  t.equal(outcomes() - before.outcomes, 2, `${N} requests, two reloads`);
  t.equal(metricValue((await orders.admin('/metrics')).body, 'meshcar_config_reloads_total{result="success"}'), 3, 'counted: the SIGHUP and the two');
});

t.test('SIGHUP changes outbound upstreams live: added, re-pointed, re-timed, removed; kept sessions stay up', async (t) => {
  const [{ orders, frontend }, payments] = await Promise.all([pair(), startSidecar(mesh.ca, { service: 'payments', inbound: { app: `http://127.0.0.1:${mesh.app.port}`, timeout: '10s', authorize: AUTHORIZE } })]);
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop(), payments.stop()]));
  const call = (host: string, path = '/headers') => request(frontend.outboundPort, { path, headers: { host } });
  // one page of frontend's /metrics per check (its renders start at least 1 s apart), read twice
  const metrics = async () => (await frontend.admin('/metrics')).body;
  const sessions = (text: string, upstream: string) => metricValue(text, `meshcar_upstream_sessions{upstream="${upstream}"}`);
  const closedSessions = (text: string) => {
    if (!/^# TYPE meshcar_http2_sessions_closed_total counter$/m.test(text)) throw new Error('no meshcar_http2_sessions_closed_total family in /metrics');
    let sum = 0;
    for (const line of text.split('\n')) if (line.startsWith('meshcar_http2_sessions_closed_total')) sum += Number(line.split(' ').pop());
    return sum;
  };
  const servedBy = async (sidecar: RunningSidecar) => {
    let sum = 0;
    for (const line of (await sidecar.admin('/metrics')).body.split('\n')) if (line.startsWith('meshcar_requests_total{') && line.includes('direction="inbound"')) sum += Number(line.split(' ').pop());
    return sum;
  };

  t.equal((await call('orders')).status, 200);
  const ordersSession = await onlyConnectionTo(frontend.process.child.pid as number, orders.inboundPort);
  t.equal((await call('payments')).status, 404, 'payments is not configured yet');
  const first = await metrics();
  t.equal(sessions(first, 'orders'), 1, 'one session to orders');
  const closedBefore = closedSessions(first);

  // 1. a second upstream, added by POST /reload; orders is untouched and keeps its session
  await editConfig(frontend, '      timeout: 10s', `      timeout: 10s\n    payments:\n      endpoints: [127.0.0.1:${payments.inboundPort}]\n      identity: spiffe://mesh.local/svc/payments\n      timeout: 10s`);
  const added = await postReload(frontend.adminPort);
  t.equal(added.status, 200);
  t.same(JSON.parse(added.body), { applied: ['outbound.upstreams.payments'], restartRequired: [] });
  t.equal((await call('payments')).status, 200, 'the new Host routes without a restart');
  t.equal((await call('orders')).status, 200);
  const afterAdd = await metrics();
  t.equal(sessions(afterAdd, 'orders'), 1, 'the unchanged upstream has one session');
  t.same(await connectionsTo(frontend.process.child.pid as number, orders.inboundPort), [ordersSession], 'the same one: the unchanged upstream kept its HTTP/2 session');
  t.equal(closedSessions(afterAdd), closedBefore, 'no session was closed');

  // 2. orders re-pointed to the payments sidecar while a slow request runs on the old session
  // held at the app until the re-pointed upstream has served the next request
  const slow = request(frontend.outboundPort, { path: '/slow?hold', headers: { host: 'orders', 'x-request-id': 'reload-repoint-slow' } });
  await waitFor(async () => mesh.app.seen.some((h) => h['x-request-id'] === 'reload-repoint-slow'), 10_000, 'the slow request at the app');
  await editConfig(frontend, `endpoints: [127.0.0.1:${orders.inboundPort}]`, `endpoints: [127.0.0.1:${payments.inboundPort}]`);
  await editConfig(frontend, 'identity: spiffe://mesh.local/svc/orders', 'identity: spiffe://mesh.local/svc/payments');
  const repointed = await hangUp(frontend);
  t.equal(repointed.msg, 'config reloaded');
  t.same(repointed.applied, ['outbound.upstreams.orders.endpoints', 'outbound.upstreams.orders.identity']);
  t.same(repointed.restartRequired, []);
  const [paymentsBefore, ordersBefore] = await Promise.all([servedBy(payments), servedBy(orders)]);
  t.equal((await call('orders')).status, 200);
  t.equal(await servedBy(payments), paymentsBefore + 1, 'the next request went to the new endpoint');
  mesh.app.release('reload-repoint-slow');
  const late = await slow;
  t.equal(late.status, 200, 'the in-flight request on the old endpoint completed');
  t.equal(late.body.toString(), 'late');
  t.equal(await servedBy(orders), ordersBefore + 1, 'only the in-flight request reached the old endpoint');

  // 3. a shorter timeout: the next request meets it
  await editConfig(frontend, /(payments:\n[^\n]*\n[^\n]*\n\s+)timeout: 10s/, '$1timeout: 500ms');
  const retimed = await hangUp(frontend);
  t.same(retimed.applied, ['outbound.upstreams.payments.timeout']);
  const timedOut = await call('payments', '/slow');
  t.equal(timedOut.status, 504, 'the next request meets the new timeout');

  // 4. payments removed: no_route next
  await editConfig(frontend, /\n {4}payments:\n[^\n]*\n[^\n]*\n[^\n]*timeout: 500ms/, '');
  const removed = await hangUp(frontend);
  t.same(removed.applied, ['outbound.upstreams.payments']);
  const gone = await call('payments');
  t.equal(gone.status, 404);
  t.equal(gone.headers['x-meshcar-error'], 'no_route');
  t.equal((await call('orders')).status, 200, 'the other upstream still serves');
  const config = JSON.parse((await frontend.admin('/config')).body) as { outbound: { upstreams: Record<string, unknown> } };
  t.same(Object.keys(config.outbound.upstreams), ['orders'], '/config shows the new upstream list');
});
