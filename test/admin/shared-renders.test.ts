// GET /metrics renders are shared: scrapes that come together get one page (rendered once, per
// variant: Prometheus text and OpenMetrics apart), yet a scrape never gets a page rendered
// before it came (a count bumped before it asked is on its page).
// Real HTTP clients (one connection each) against a real admin server in this process.

import t from 'tap';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { startAdminServer, type AdminState } from '../../src/admin/server.js';

const SCRAPES = 20;
/** The admin server's gap between renders here (the default is 1 s). */
const GAP_MS = 200;

let renders = 0;
let counted = 1;
const accepts: Array<string | undefined> = [];
const state: AdminState = {
  ready: () => true,
  draining: () => false,
  identity: () => ({}),
  config: () => ({}),
  // a render that takes a while, so scrapes overlap it
  metrics: async (accept) => {
    renders += 1;
    accepts.push(accept);
    const open = accept?.includes('application/openmetrics-text') === true;
    const page = `# render ${renders}\nthings_total ${counted}\n${open ? '# EOF\n' : ''}`;
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { contentType: open ? 'application/openmetrics-text; version=1.0.0' : 'text/plain; version=0.0.4', body: page };
  },
};

function scrape(port: number, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          const body = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: body.toString('utf8') });
        });
      })
      .on('error', reject);
  });
}

t.test(`${SCRAPES} scrapes at once share a render; a later one sees what changed before it`, async (t) => {
  // the 2 × SCRAPES connections at once all come from 127.0.0.1: more than one peer may hold
  // (ADMIN_MAX_CONNECTIONS_PER_PEER, checked in connection-limits.test.ts), not what this checks
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, state, pino({ level: 'silent' }), { metricsMinGapMs: GAP_MS, maxConnectionsPerPeer: 2 * SCRAPES });
  t.teardown(() => admin.close());

  renders = 0;
  const plain = Array.from({ length: SCRAPES }, (_, i) => scrape(admin.port, i % 2 === 0 ? { 'accept-encoding': 'gzip' } : {}));
  const open = Array.from({ length: SCRAPES }, () => scrape(admin.port, { accept: 'application/openmetrics-text;version=1.0.0,text/plain;q=0.5' }));
  const [plainPages, openPages] = await Promise.all([Promise.all(plain), Promise.all(open)]);
  t.ok(
    [...plainPages, ...openPages].every((p) => p.status === 200),
    'every scrape answered',
  );
  t.ok(plainPages.every((p) => p.type.startsWith('text/plain') && !p.body.includes('# EOF')), 'Prometheus text for those that did not ask for OpenMetrics, gzipped or not');
  t.ok(openPages.every((p) => p.type.startsWith('application/openmetrics-text') && p.body.includes('# EOF')), 'OpenMetrics for those that asked');
  // the first of each variant renders at once, the rest share the next (a straggler: one more)
  t.ok(renders <= 6, `${renders} renders for ${2 * SCRAPES} scrapes`);
  t.ok(new Set(plainPages.map((p) => p.body)).size <= 3, 'the text scrapes got the same page or two');
  t.same([...new Set(accepts)].sort(), ['application/openmetrics-text', undefined].sort(), 'rendered with one Accept per variant');

  counted = 2;
  const started = Date.now();
  const after = await scrape(admin.port);
  t.match(after.body, /^things_total 2$/m, 'a scrape right after a change sees it (not the page rendered before it came)');
  counted = 3;
  t.match((await scrape(admin.port)).body, /^things_total 3$/m, 'and the next one too');
  t.ok(Date.now() - started < 5 * GAP_MS + 2_000, 'each waited at most about the gap between renders');
});
