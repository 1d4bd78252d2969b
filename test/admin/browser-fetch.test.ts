// What a web page in a browser on the same machine can make the admin port do with requests it
// cannot read: a GET with no-cors (or an <img>, an <iframe>) to http://127.0.0.1:PORT passes
// the Host check (an IP address) and carries no Origin, yet each one costs an /endpoints render
// (with workers, an ask of every worker). Requests the browser marks as made by another site
// (Sec-Fetch-Site: cross-site or same-site) are refused before any work, whatever the method;
// the user's own navigation (a link, the address bar) and clients that send no Sec-Fetch-*
// (curl, Prometheus, the kubelet) are answered. Raw HTTP/1.1 on a real admin server.

import t from 'tap';
import http from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startAdminServer, type AdminState } from '../../src/admin/server.js';

let views = 0;
let reloads = 0;
let renders = 0;
const state: AdminState = {
  ready: () => true,
  draining: () => false,
  identity: () => ({}),
  config: () => ({}),
  metrics: async () => {
    renders += 1;
    return { contentType: 'text/plain; version=0.0.4', body: 'up 1\n' };
  },
  reload: async () => {
    reloads += 1;
    return { applied: [], restartRequired: [] };
  },
  views: {
    '/endpoints': () => {
      views += 1;
      return { endpoints: [] };
    },
  },
};

/** One request with exactly these headers (Host is the admin's IP and port, as a browser sends it). */
function ask(port: number, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; error?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, ...(res.headers['x-meshcar-error'] ? { error: (JSON.parse(text) as { error: string }).error } : {}) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

interface WarnLine {
  level: number;
  msg: string;
  remote?: string;
  url?: string;
  host?: string;
  origin?: string;
}

/** A warn-level logger whose lines are kept, parsed. */
function warnLines(): { lines: WarnLine[]; logger: ReturnType<typeof pino> } {
  const lines: WarnLine[] = [];
  const logTo = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as WarnLine);
      done();
    },
  });
  return { lines, logger: pino({ level: 'warn' }, logTo) };
}

/** The Sec-Fetch-* a browser sends for a fetch(url, {mode: 'no-cors'}) from a page on `site`. */
const noCors = (site: string) => ({ 'sec-fetch-site': site, 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'empty' });

t.test('requests a page on another site makes are refused before any work; navigation, curl and scrapers are answered', async (t) => {
  // the admin's warn lines, as the sidecar's log would carry them
  const { lines, logger } = warnLines();
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, logger);
  t.teardown(() => admin.close());
  const port = admin.port;

  t.test('fetch no-cors, <img> and <iframe> from another site: 403, nothing rendered', async (t) => {
    const before = { views, renders, reloads };
    for (const [what, method, path, headers] of [
      ['fetch no-cors GET /endpoints, cross-site', 'GET', '/endpoints', noCors('cross-site')],
      ['fetch no-cors GET /endpoints?format=openapi, same-site (another port of localhost)', 'GET', '/endpoints?format=openapi', noCors('same-site')],
      ['<img src=/metrics>', 'GET', '/metrics', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' }],
      ['<iframe src=/endpoints>', 'GET', '/endpoints', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' }],
      ['a POST /reload marked cross-site, even without an Origin', 'POST', '/reload', { ...noCors('cross-site'), 'content-type': 'text/plain' }],
      ['a cross-site form POST /reload (navigate, document)', 'POST', '/reload', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', origin: 'http://evil.example' }],
    ] as const) {
      t.same(await ask(port, method, path, headers), { status: 403, error: 'forbidden' }, what);
    }
    t.same({ views, renders, reloads }, before, 'no view rendered, no /metrics page, no reload');
    // the operator sees it without debug on: one warn line for the peer, the rest of its burst
    // counted into its next line (not six lines for six requests)
    const refused = lines.filter((l) => l.msg.startsWith('admin request refused: '));
    t.equal(refused.length, 1, `one warn line for six refusals from one address in 10 s (${lines.map((l) => l.msg).join(' | ')})`);
    t.match(refused[0], { level: 40, remote: '127.0.0.1', url: '/endpoints', msg: /another site \(Sec-Fetch-Site: cross-site\)/ }, 'warn level, with the peer, the request and why');
  });

  t.test('the user opening an admin page, and clients without Sec-Fetch-*, are answered', async (t) => {
    const before = { views, renders, reloads };
    t.equal((await ask(port, 'GET', '/endpoints', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' })).status, 200, 'a link to it on another site, followed');
    t.equal((await ask(port, 'GET', '/endpoints', { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' })).status, 200, 'typed in the address bar');
    t.equal((await ask(port, 'GET', '/endpoints', {})).status, 200, 'curl');
    t.equal((await ask(port, 'GET', '/metrics', { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' })).status, 200, 'Prometheus');
    t.equal((await ask(port, 'POST', '/reload', {})).status, 200, 'curl -X POST /reload');
    t.same({ views: views - before.views, renders: renders - before.renders, reloads: reloads - before.reloads }, { views: 3, renders: 1, reloads: 1 });
    t.equal(lines.filter((l) => l.msg.startsWith('admin request refused: ')).length, 1, 'requests answered log nothing');
  });
});

// What a peer sent is quoted cut: a 16 KiB head held a target and a Host of thousands of characters, each
// quoted twice in a refusal line (about 21 KB a line, 100 lines per 10 s across addresses).
t.test("a refusal line quotes the peer's target, Host and Origin cut to 256 characters", async (t) => {
  const { lines, logger } = warnLines();
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, logger);
  t.teardown(() => admin.close());
  const long = 'y'.repeat(4_000);
  t.same(await ask(admin.port, 'GET', `/${long}`, { host: `bad!${long}`, origin: `http://${long}.example` }), { status: 403, error: 'forbidden' }, 'refused');
  const refused = lines.find((l) => l.msg.startsWith('admin request refused: '));
  t.ok(refused, 'a warn line');
  t.ok(JSON.stringify(refused).length < 2_000, `the line stays short (${JSON.stringify(refused).length} characters)`);
  t.match(refused?.url, /… \(4001 characters\)$/, 'the target cut, its length said');
  t.match(refused?.host, /… \(4004 characters\)$/, 'the Host cut');
  t.match(refused?.origin, /… \(4015 characters\)$/, 'the Origin cut');
});
