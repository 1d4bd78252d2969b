// A reload reads the config file only once it has stood unchanged for RELOAD_SETTLE_MS
// (src/reload-read.ts): a file written in place may be read while its writer is part way, and
// a config cut short before `inbound.authorize` is still a valid config, one that lets every
// caller of the trust domain in (a review applied such a file with a SIGHUP sent on inotify's
// modify event: 403 became 200). A file that has stood is read at once. And a reload that removes
// inbound.authorize says so in a warn line, meant or not. A real Sidecar over real files and a
// real admin port (test/helpers/files-sidecar.ts).

import t from 'tap';
import http from 'node:http';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makePki } from './helpers/pki.js';
import { startFilesSidecar } from './helpers/files-sidecar.js';
import { RELOAD_SETTLE_MS } from '../src/reload-read.js';

function postReload(port: number): Promise<{ status: number; body: { applied?: string[] } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/reload', method: 'POST', agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { applied?: string[] } }));
    });
    req.on('error', reject);
    req.end();
  });
}

const rule = (path: string) => `  authorize:\n    - {from: [spiffe://mesh.local/svc/frontend], paths: [${path}]}\n`;

t.test('a config file still being written in place is read once it has stood; one that has stood at once', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir();
  const sidecar = await startFilesSidecar(pki, dir);
  t.teardown(() => sidecar.close());
  const file = join(dir, 'orders.yaml');
  // the inbound block last and in block style, so authorize can be the file's last lines
  const text = await readFile(file, 'utf8');
  const inbound = /inbound: \{listen: "([^"]+)", app: "([^"]+)"\}/.exec(text);
  const base = `${text.replace(/^inbound: .*$/m, '').trim()}\ninbound:\n  listen: "${inbound?.[1]}"\n  app: "${inbound?.[2]}"`;
  const config = async () => JSON.parse((await sidecar.adminGet('/config')).toString()) as { inbound?: { authorize?: Array<{ paths?: string[] }> } };
  const past = new Date(Date.now() - 60_000);

  // a file that has stood: read at once
  await writeFile(file, `${base}\n${rule('/p')}`);
  await utimes(file, past, past);
  let started = Date.now();
  const first = await postReload(sidecar.adminPort);
  t.equal(first.status, 200, JSON.stringify(first.body));
  t.ok(Date.now() - started < RELOAD_SETTLE_MS, `a file that has stood is read at once (${Date.now() - started} ms)`);
  t.same((await config()).inbound?.authorize?.[0]?.paths, ['/p'], 'its authorize applies');

  // written in place, its writer part way (all but authorize), the reload asked for then; the
  // writer finishes half a second later
  await writeFile(file, `${base}\n`);
  started = Date.now();
  const answer = postReload(sidecar.adminPort);
  await sleep(500);
  await writeFile(file, `${base}\n${rule('/q')}`);
  t.equal((await answer).status, 200);
  t.ok(Date.now() - started >= RELOAD_SETTLE_MS, `the reload waited for the file to stand (${Date.now() - started} ms)`);
  t.same((await config()).inbound?.authorize?.[0]?.paths, ['/q'], 'the whole file was read: authorize kept, as written last');

  // authorize removed on purpose: applied, and said
  await writeFile(file, `${base}\n`);
  await utimes(file, past, past);
  const from = sidecar.lines.length;
  t.equal((await postReload(sidecar.adminPort)).status, 200);
  t.equal((await config()).inbound?.authorize, undefined, 'a file without authorize: applied');
  t.ok(sidecar.lines.slice(from).some((l) => l.level === 40 && l.msg === 'this reload removes inbound.authorize: every caller of the trust domain may call now'), 'with a warn line');
});

/**
 * A real sidecar whose config names `spec` (written with `files`, all dated a minute back), then
 * `cut` written in place short of its `maximum: 10`, a reload read, and the writer finishing
 * 1.2 s later: what the reload read, and how long it took.
 */
async function readWhileWritten(t: Tap.Test, files: Record<string, string>, cut: { name: string; short: string; whole: string }) {
  const { readReload } = await import('../src/reload-read.js');
  const { loadSidecarConfig } = await import('../src/config/sidecar-config.js');
  const pki = await makePki('mesh.local');
  const dir = t.testdir();
  const sidecar = await startFilesSidecar(pki, dir);
  t.teardown(() => sidecar.close());
  const file = join(dir, 'orders.yaml');
  const past = new Date(Date.now() - 60_000);
  for (const [name, text] of Object.entries(files)) {
    await writeFile(join(dir, name), text);
    await utimes(join(dir, name), past, past);
  }
  const text = await readFile(file, 'utf8');
  const inbound = /inbound: \{listen: "([^"]+)", app: "([^"]+)"\}/.exec(text);
  await writeFile(file, `${text.replace(/^inbound: .*$/m, '').trim()}\ninbound:\n  listen: "${inbound?.[1]}"\n  app: "${inbound?.[2]}"\n  openapi: {spec: ${join(dir, 'orders.openapi.yaml')}, mode: enforce}\n`);
  await utimes(file, past, past);
  const running = await loadSidecarConfig(file);
  await writeFile(join(dir, cut.name), cut.short);
  const started = Date.now();
  const reading = readReload(file, () => running);
  await sleep(1_200);
  await writeFile(join(dir, cut.name), cut.whole);
  const read = await reading;
  return { read, tookMs: Date.now() - started, dir };
}

const qtyIn = (schema: string) => `openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /orders:\n    get:\n      parameters:\n        - name: qty\n          in: query\n          schema:${schema}\n      responses: {'200': {description: ok}}\n`;

// the specs a config names are read the same way: one cut short (before `maximum: 10`) was applied
t.test('a spec file still being written in place is read once it has stood', async (t) => {
  const whole = qtyIn('\n            type: integer\n            maximum: 10');
  const { read, tookMs } = await readWhileWritten(t, { 'orders.openapi.yaml': whole }, { name: 'orders.openapi.yaml', short: qtyIn('\n            type: integer'), whole });
  t.ok('guards' in read, JSON.stringify('refused' in read ? read.refused : ''));
  if (!('guards' in read)) return;
  t.ok(tookMs >= RELOAD_SETTLE_MS, `waited for the spec to stand (${tookMs} ms; ${read.waitedMs} ms counted as waiting)`);
  t.equal(read.guards.inbound?.spec.check('GET', '/orders', 'qty=1000', {}, false).violation?.kind, 'query', 'the whole spec was read: qty=1000 is over its maximum');
});

// ...and so are the files the specs' $refs name, known only once a spec is read: one cut short
// (before `maximum: 10`) was applied though the spec itself had stood
t.test("a file a spec's $ref names, still being written in place, is read once it has stood", async (t) => {
  const whole = 'type: integer\nmaximum: 10\n';
  const { read, tookMs, dir } = await readWhileWritten(t, { 'orders.openapi.yaml': qtyIn(" {$ref: './qty.yaml'}"), 'qty.yaml': whole }, { name: 'qty.yaml', short: 'type: integer\n', whole });
  t.ok('guards' in read, JSON.stringify('refused' in read ? read.refused : ''));
  if (!('guards' in read)) return;
  t.ok(tookMs >= RELOAD_SETTLE_MS, `waited for the referenced file to stand (${tookMs} ms; ${read.waitedMs} ms counted as waiting)`);
  t.equal(read.guards.inbound?.spec.check('GET', '/orders', 'qty=1000', {}, false).violation?.kind, 'query', 'the whole referenced file was read: qty=1000 is over its maximum');
  t.same(read.guards.inbound?.spec.refsRead, [join(dir, 'qty.yaml')], 'the spec knows the file its $ref named');
});
