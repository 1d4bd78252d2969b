// An outbound listener off loopback (0.0.0.0, [::], a routable address, a host name) is valid
// but warned about in one line: any peer that reaches it calls the upstreams under this
// sidecar's identity (the review's peer on another address was relayed as svc/b). Loopback in
// any spelling gives no warning. `meshcar check` prints it; a running sidecar logs it at start.

import t from 'tap';
import { configWarnings } from '../../src/config/config-warnings.js';
import { BASE_CONFIG, loadConfigText } from '../helpers/config-text.js';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';
import { check, warningsIn, writeOrdersConfig } from '../helpers/config-warning-runs.js';

const outbound = (listen: string) => [`outbound:`, `  listen: "${listen}"`, '  upstreams:', '    payments: {endpoints: ["127.0.0.1:1"], identity: "spiffe://mesh.local/svc/payments"}'];

const line = (file: string, listen: string) =>
  `${file}: outbound.listen: ${listen} is not a loopback address: any peer that reaches it calls the upstreams as spiffe://mesh.local/svc/orders, this sidecar's identity; listen on 127.0.0.1 or [::1]`;

/** The config warnings of BASE_CONFIG with an outbound on `listen`. */
async function warningsFor(t: Tap.Test, listen: string): Promise<string[]> {
  const config = await loadConfigText(t, `${BASE_CONFIG}${outbound(listen).join('\n')}\n`);
  return configWarnings(config, 'c.yaml');
}

t.test('off loopback: one line', async (t) => {
  for (const [listen, shown] of [
    ['0.0.0.0:15001', '0.0.0.0:15001'],
    ['[::]:15001', '[::]:15001'],
    ['10.0.0.5:15001', '10.0.0.5:15001'],
    ['[fd00::2]:15001', '[fd00::2]:15001'],
    ['orders.internal:15001', 'orders.internal:15001'],
  ]) {
    t.test(listen, async (t) => t.same(await warningsFor(t, listen!), [line('c.yaml', shown!)]));
  }
});

t.test('loopback in any spelling: none', async (t) => {
  for (const listen of ['127.0.0.1:15001', '127.1.2.3:15001', '[::1]:15001', '[0:0:0:0:0:0:0:1]:15001', '[::ffff:127.0.0.1]:15001', 'localhost:15001', 'LocalHost:15001']) {
    t.test(listen, async (t) => t.same(await warningsFor(t, listen), []));
  }
});

t.test('meshcar check prints it, and a running sidecar logs it at start', async (t) => {
  const pki = await makePki('mesh.local');
  const file = await writeOrdersConfig(t.testdir(), pki, outbound('0.0.0.0:0'));
  const result = await check(file);
  t.equal(result.status, 0, 'a warning does not fail the check');
  t.match(result.stdout, `${file}: valid sidecar configuration`);
  t.same(result.stderr, [`meshcar: warning: ${line(file, '0.0.0.0:0')}`]);
  const proc = startMeshcar(['run', '--config', file]);
  t.teardown(() => proc.stop());
  await proc.waitFor((l) => l.msg === 'sidecar ready', 30_000);
  t.same(warningsIn(proc, 0), [line(file, '0.0.0.0:0')], 'at start');
});
