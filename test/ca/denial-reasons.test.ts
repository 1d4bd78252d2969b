// meshcar_ca_requests_denied_total{reason} is exported at 0 for every reason the CA can deny
// with, from `ca serve`'s start: a series born at 1 has no increase to Prometheus, so
// increase()/rate() missed each reason's first denial. Two real `ca serve` processes on one CA
// folder (the README supports it) each export their own, checked by promtool; real denials
// (a foreign token, an expired one, a weak key's CSR, a head that is not HTTP) count under their
// reason at the server that gave them.

import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMeshcar, type MeshcarProcess } from '../helpers/process.js';
import { callCa, promtoolCheck } from '../helpers/ca.js';
import { rawTlsRequest } from '../helpers/raw-http.js';
import { caToken } from '../../src/ca/commands.js';
import { CA_DENIAL_REASONS } from '../../src/ca/denial-reasons.js';
import { buildCsr } from '../../src/pki/csr-request.js';
import { ecKeys } from '../helpers/hostile-csr.js';

const cli = (args: string[]) => new Promise<void>((resolve, reject) => execFile(process.execPath, ['dist/cli.js', ...args], (err) => (err ? reject(err) : resolve())));

async function urlOf(ca: MeshcarProcess): Promise<string> {
  const until = Date.now() + 15_000;
  for (;;) {
    const url = ca.lines.find((line) => line.msg === 'CA server listening')?.url;
    if (typeof url === 'string') return url;
    if (Date.now() > until || ca.child.exitCode !== null) throw new Error(`ca serve did not listen: ${ca.stderr.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const denied = (text: string, reason: string) => Number(new RegExp(`^meshcar_ca_requests_denied_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);

t.test('every denial reason at 0 from the start, at each of two ca serve on one folder', async (t) => {
  const dir = t.testdir();
  const caDir = join(dir, 'ca');
  await cli(['ca', 'init', '--dir', caDir, '--trust-domain', 'mesh.local']);
  const config = join(dir, 'ca.yaml');
  await writeFile(config, `trustDomain: mesh.local\ndir: ${caDir}\nlisten: 127.0.0.1:0\nserverNames: [localhost]\n`);
  const a = startMeshcar(['ca', 'serve', '--config', config]);
  const b = startMeshcar(['ca', 'serve', '--config', config]);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const [urlA, urlB] = await Promise.all([urlOf(a), urlOf(b)]);
  const ca = await readFile(join(caDir, 'bundle.pem'), 'utf8');
  const scrape = async (url: string) => (await callCa(url, { path: '/metrics', ca })).text;

  for (const [name, url] of [['first', urlA], ['second', urlB]] as const) {
    const text = await scrape(url);
    const check = await promtoolCheck(text);
    t.equal(check.code, 0, `promtool accepts the ${name}'s page: ${check.output}`);
    t.same(CA_DENIAL_REASONS.filter((reason) => denied(text, reason) !== 0), [], `the ${name} exports every reason at 0 before any request`);
  }

  // real denials at the first server
  const sign = async (token: string, csr: string) => (await callCa(urlA, { method: 'POST', path: '/v1/sign', ca, body: JSON.stringify({ csr }), headers: { authorization: `Bearer ${token}` } })).json().error;
  const keys = ecKeys();
  const csr = await buildCsr(keys.privateKey, keys.publicKey, 'spiffe://mesh.local/svc/orders');
  const token = await caToken(caDir, 'orders', 3_600_000, false);
  t.equal(await sign('a.b.c', csr), 'bad_token');
  t.equal(await sign(await caToken(caDir, 'orders', 1, false), csr), 'token_expired');
  t.equal(await sign(token, 'not a csr'), 'bad_csr');
  const other = ecKeys();
  t.equal(await sign(token, await buildCsr(other.privateKey, other.publicKey, 'spiffe://mesh.local/svc/billing')), 'identity_not_allowed');
  t.equal((await rawTlsRequest(Number(new URL(urlA).port), { servername: 'localhost', rejectUnauthorized: false }, 'GARBAGE\r\n\r\n')).status, 400);

  const afterA = await scrape(urlA);
  for (const reason of ['bad_token', 'token_expired', 'bad_csr', 'identity_not_allowed', 'bad_request']) t.equal(denied(afterA, reason), 1, `${reason} counted once at the first`);
  t.equal(denied(afterA, 'internal'), 0, 'none as internal');
  const afterB = await scrape(urlB);
  t.same(CA_DENIAL_REASONS.filter((reason) => denied(afterB, reason) !== 0), [], 'the second still exports each at 0');
  t.equal((await promtoolCheck(afterA)).code, 0, 'promtool accepts the page with denials');
});
