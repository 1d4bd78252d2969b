// The demo on a port another process holds (review finding 3): it must not take a foreign CA
// for its own nor hang; it exits 1 promptly with one line naming the port and DEMO_PORT_BASE,
// and leaves nothing listening. Every demo port is moved with DEMO_PORT_BASE, drawn from
// 2000-6500 (ports up to 9943): below the ephemeral range (32768 and up), where a client socket
// of a test running beside this one may take a port at any moment (a CI run saw the demo name
// such a port before the held one), and clear of the named ports of test/helpers/process.ts
// freePort (10000-14999), `make demo` (15000) and the other demo tests (20000-29243). The
// held port and the demo's other ports of that base must be free (checked, else another is drawn).

import t from 'tap';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { impostor, makeCaDir } from '../helpers/ca.js';
import { waitFor } from '../helpers/mesh.js';
import { demoConfigDir, demoPorts } from '../../src/demo/ports.js';

const RUNNER = fileURLToPath(new URL('../../dist/demo/run-demo.js', import.meta.url));
const CONFIG_DIR = fileURLToPath(new URL('../../config/demo', import.meta.url));
/** Well under the 30 s the demo used to wait for sidecars that could never get an identity. */
const PROMPT_MS = 20_000;

function runDemo(cwd: string, base: number): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const env = { ...process.env, DEMO_SECONDS: '60', DEMO_PORT_BASE: String(base) };
    execFile(process.execPath, [RUNNER], { cwd, env, timeout: 45_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** `server` listening on 127.0.0.1:`port`; rejects if that port is taken. */
async function listening(server: net.Server, port: number): Promise<net.Server> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

const refused = (port: number) =>
  new Promise<boolean>((done) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      done(false);
    });
    socket.on('error', () => done(true));
  });

async function nothingListening(t: Tap.Test, base: number, held: number): Promise<void> {
  const ports = Object.values(demoPorts(base)).filter((p) => p !== held);
  await waitFor(async () => (await Promise.all(ports.map(refused))).every(Boolean), 5000, `every demo port but ${held} closed`);
  t.pass(`nothing listens on the demo's ports ${ports.join(', ')}`);
}

function failureLine(t: Tap.Test, stderr: string, port: number, base: number): void {
  const lines = stderr.split('\n').filter((l) => l.startsWith('demo failed:'));
  t.equal(lines.length, 1, 'one line says why');
  t.match(lines[0], new RegExp(`127\\.0\\.0\\.1:${port}\\b.*DEMO_PORT_BASE=N .*now ${base}\\)`), 'it names the port and how to move the demo');
}

/** What holds the demo CA's port: another CA (it answers TLS, with a certificate not ours), or a bare listener. */
const holders: Record<string, (port: number) => Promise<net.Server>> = {
  'another CA': async (port) => (await impostor(await makeCaDir('other.test'), 'spiffe://other.test/ca', port)).server,
  'a plain TCP listener': (port) => listening(net.createServer(), port),
};

/** Whether 127.0.0.1:`port` can be bound now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A holder on the demo port at `offset` from a base drawn from 2000-6500 (see the header):
 * drawn again until the holder could bind and every other port of that base is free.
 */
async function holdDemoPort(hold: (port: number) => Promise<net.Server>, offset: number): Promise<{ holder: net.Server; port: number; base: number }> {
  for (let i = 0; i < 50; i++) {
    const base = 2000 + Math.floor(Math.random() * 4500);
    const port = base + offset;
    const holder = await hold(port).catch(() => undefined);
    if (holder === undefined) continue;
    const others = Object.values(demoPorts(base)).filter((p) => p !== port);
    if ((await Promise.all(others.map(bindable))).every(Boolean)) return { holder, port, base };
    holder.close();
  }
  throw new Error('no demo port base from 2000 to 6500 whose ports are all free');
}

for (const [name, hold] of Object.entries(holders)) {
  t.test(`${name} already on the demo CA port: not taken for ours, exits 1 at once`, async (t) => {
    // the CA is base+3443 (src/demo/ports.ts)
    const { holder, port, base } = await holdDemoPort(hold, 3443);
    t.teardown(() => void holder.close());
    const result = await runDemo(t.testdir(), base);
    t.equal(result.code, 1, `exit code 1; stderr: ${result.stderr}`);
    t.ok(result.ms < PROMPT_MS, `exited promptly (${result.ms} ms)`);
    failureLine(t, result.stderr, port, base);
    t.notMatch(result.stdout, /stopped every process/, 'refused before anything started: no line says processes stopped');
    t.notMatch(result.stdout, /driving traffic/, 'no traffic against a CA that is not ours');
    await nothingListening(t, base, port);
  });
}

t.test('an app port held: the app that did start and the CA are stopped too, exits 1', async (t) => {
  // the orders app is base+3080
  const { holder, port, base } = await holdDemoPort((port) => listening(net.createServer(), port), 3080);
  t.teardown(() => void holder.close());
  const result = await runDemo(t.testdir(), base);
  t.equal(result.code, 1, `exit code 1; stderr: ${result.stderr}`);
  t.ok(result.ms < PROMPT_MS, `exited promptly (${result.ms} ms)`);
  failureLine(t, result.stderr, port, base);
  await nothingListening(t, base, port);
});

t.test('DEMO_PORT_BASE moves every port of every demo config', async (t) => {
  const out = t.testdir();
  const ports = demoPorts(30000);
  await demoConfigDir(CONFIG_DIR, ports, out);
  const text = (await Promise.all(['ca.yaml', 'orders.yaml', 'frontend.yaml'].map((f) => readFile(join(out, f), 'utf8')))).join('\n');
  const named = [...text.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
  t.same([...new Set(named)].sort(), Object.values(ports).sort(), 'each demo port, moved, and nothing else');
});
