// A SPIFFE ID in the config that no meshcar sidecar carries (each one's is
// spiffe://TRUST-DOMAIN/svc/SERVICE): an `authorize` entry or an upstream `identity` such as
// spiffe://mesh.local/orders is most likely a typo, and the rule never matches or every call to
// the upstream fails its identity check. The file stays valid (a caller or upstream outside
// meshcar may carry such an ID): `meshcar check` passes it with one warning line per such ID
// (the file, the key, the ID, why), and the sidecar's start and each reload log the same line.

import t from 'tap';
import { makePki, type TestPki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';
import { check, postReload, warningsIn, writeOrdersConfig } from '../helpers/config-warning-runs.js';

/** A sidecar config for `orders`: an inbound whose authorize rules take `from` lists, and upstreams `name: identity`. */
function writeConfig(dir: string, pki: TestPki, from: string[][], upstreams: Record<string, string>): Promise<string> {
  return writeOrdersConfig(dir, pki, [
    'inbound:',
    '  listen: "127.0.0.1:0"',
    '  app: "http://127.0.0.1:1"',
    '  authorize:',
    ...from.map((ids) => `    - from: [${ids.map((id) => JSON.stringify(id)).join(', ')}]`),
    'outbound:',
    '  listen: "127.0.0.1:0"',
    '  upstreams:',
    ...Object.entries(upstreams).map(([name, id]) => `    ${name}: {endpoints: ["127.0.0.1:1"], identity: ${JSON.stringify(id)}}`),
  ]);
}

t.test('check passes the file with one warning line per ID no meshcar sidecar carries', async (t) => {
  const pki = await makePki('mesh.local');
  const file = await writeConfig(
    t.testdir(),
    pki,
    [
      ['spiffe://mesh.local/svc/frontend', 'spiffe://mesh.local/frontend'], // the second: no /svc/
      ['spiffe://mesh.local/svc/*', 'spiffe://mesh.local/*', 'spiffe://mesh.local/team/*'], // the last matches no sidecar
      ['spiffe://mesh.local/svc/batch/v2'], // a service name has no slash
    ],
    { payments: 'spiffe://mesh.local/svc/payments', billing: 'spiffe://mesh.local/billing' },
  );
  const result = await check(file);
  t.equal(result.status, 0, 'a warning does not fail the check');
  t.match(result.stdout, `${file}: valid sidecar configuration`);
  t.same(
    result.stderr,
    [
      `meshcar: warning: ${file}: inbound.authorize[0].from: "spiffe://mesh.local/frontend" has no /svc/ before the service name, so this entry lets no meshcar sidecar call (every meshcar sidecar's ID is spiffe://mesh.local/svc/SERVICE); it is right only for a caller whose SVID comes from another issuer of the trust bundle`,
      `meshcar: warning: ${file}: inbound.authorize[1].from: "spiffe://mesh.local/team/*" matches only IDs under /team/, so this entry lets no meshcar sidecar call (every meshcar sidecar's ID is spiffe://mesh.local/svc/SERVICE); it is right only for a caller whose SVID comes from another issuer of the trust bundle`,
      `meshcar: warning: ${file}: inbound.authorize[2].from: "spiffe://mesh.local/svc/batch/v2" has more than one segment after /svc/, so this entry lets no meshcar sidecar call (every meshcar sidecar's ID is spiffe://mesh.local/svc/SERVICE); it is right only for a caller whose SVID comes from another issuer of the trust bundle`,
      `meshcar: warning: ${file}: outbound.upstreams.billing.identity: "spiffe://mesh.local/billing" has no /svc/ before the service name, so a meshcar inbound there fails the identity check and every call gets 502 (every meshcar sidecar's ID is spiffe://mesh.local/svc/SERVICE); it is right only for an upstream that is not a meshcar sidecar`,
    ],
    'the typos named, each with its key; the IDs a sidecar can carry pass',
  );
});

t.test('check says nothing more for a file whose IDs are all sidecars\'', async (t) => {
  const pki = await makePki('mesh.local');
  const file = await writeConfig(t.testdir(), pki, [['spiffe://mesh.local/svc/frontend', 'spiffe://mesh.local/svc/*'], ['spiffe://mesh.local/*']], { payments: 'spiffe://mesh.local/svc/payments' });
  const result = await check(file);
  t.equal(result.status, 0);
  t.same(result.stderr, []);
});

t.test('the sidecar logs the warning at start, and again at a reload whose file still has one', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir();
  const file = await writeConfig(dir, pki, [['spiffe://mesh.local/frontend']], { payments: 'spiffe://mesh.local/svc/payments' });
  const proc = startMeshcar(['run', '--config', file]);
  t.teardown(() => proc.stop());
  await proc.waitFor((line) => line.msg === 'sidecar ready', 30_000);
  const atStart = warningsIn(proc, 0);
  t.equal(atStart.length, 1, `one line at start: ${atStart.join('\n')}`);
  t.match(atStart[0], `${file}: inbound.authorize[0].from: "spiffe://mesh.local/frontend" has no /svc/ before the service name`);
  const admin = proc.lines.find((line) => line.msg === 'admin listening')?.address as { port: number };

  // the reloaded file fixes the rule and brings in an upstream with the same slip
  await writeConfig(dir, pki, [['spiffe://mesh.local/svc/frontend']], { payments: 'spiffe://mesh.local/payments' });
  const before = proc.lines.length;
  t.equal(await postReload(admin.port), 200);
  await proc.waitFor((line) => proc.lines.indexOf(line) >= before && line.msg === 'config reloaded');
  const atReload = warningsIn(proc, before);
  t.equal(atReload.length, 1, `the upstream alone: ${atReload.join('\n')}`);
  t.match(atReload[0], `${file}: outbound.upstreams.payments.identity: "spiffe://mesh.local/payments" has no /svc/ before the service name`);
});
