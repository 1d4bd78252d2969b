// A request to a path the CA does not serve (404 not_found) or with a method its path does not
// take (405 method_not_allowed) is a denial like any other: counted in
// meshcar_ca_requests_denied_total{reason}, both series exported at 0 from the start (a scan of
// the CA port shows on the dashboards, as Envoy counts requests that match no route). Real
// requests with curl; the CA's own /metrics scraped.

import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callCa, startTestCa } from '../helpers/ca.js';

const denied = (text: string, reason: string) => Number(new RegExp(`^meshcar_ca_requests_denied_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);

/** curl's status code for `method path` against the CA (its bundle trusted, its name localhost). */
function curl(port: number, bundleFile: string, method: string, path: string): Promise<string> {
  const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '20', '--cacert', bundleFile, '--resolve', `localhost:${port}:127.0.0.1`, '-X', method, `https://localhost:${port}${path}`];
  return new Promise((resolve, reject) => execFile('curl', args, (err, stdout) => (err ? reject(err) : resolve(stdout))));
}

t.test('404 and 405 at the CA are counted as denials, at 0 until the first', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const port = ca.server.port;
  const bundleFile = join(ca.dir, 'bundle.pem');
  const bundle = await readFile(bundleFile, 'utf8');
  const scrape = async () => (await callCa(`https://127.0.0.1:${port}`, { path: '/metrics', ca: bundle })).text;

  const before = await scrape();
  t.equal(denied(before, 'not_found'), 0, 'not_found exported at 0 from the start');
  t.equal(denied(before, 'method_not_allowed'), 0, 'method_not_allowed exported at 0 from the start');

  t.equal(await curl(port, bundleFile, 'GET', '/admin'), '404');
  t.equal(await curl(port, bundleFile, 'GET', '/v1/sign/../../etc/passwd'), '404');
  t.equal(await curl(port, bundleFile, 'GET', '/v1/sign'), '405');
  t.equal(await curl(port, bundleFile, 'DELETE', '/v1/bundle'), '405');
  t.equal(await curl(port, bundleFile, 'POST', '/healthz'), '405');

  const after = await scrape();
  t.equal(denied(after, 'not_found'), 2, 'each unknown path counted under not_found');
  t.equal(denied(after, 'method_not_allowed'), 3, 'each wrong method counted under method_not_allowed');
  t.equal(denied(after, 'internal'), 0, 'none as internal');
  t.equal(denied(after, 'rate_limited'), 0, 'nor as anything else');
});
