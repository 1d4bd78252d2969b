// A first start with the CA out of reach: the sidecar retries its first SVID request (at most a
// second apart, for 30 s) and /ready says 503 starting meanwhile. /identity says why it is not
// ready yet, in the shape renewalFailing has for failing renewals (how many requests failed,
// since when, the latest reason), and `meshcar doctor`'s admin check names it; before, both said
// only "starting", the reason was in the log alone. A real sidecar process (`meshcar run`) whose
// identity.ca.url is a loopback port the test bound and closed: every connection is refused.

import t from 'tap';
import { launchSidecar, type LaunchedSidecar } from '../helpers/mesh.js';
import { meshFixture } from '../helpers/mesh-fixture.js';
import { freePort } from '../helpers/process.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { checkAdmin } from '../../src/doctor/local.js';
import { formatResult } from '../../src/doctor/result.js';

const mesh = meshFixture(t);

interface StartingView {
  spiffeId: string;
  status?: string;
  renewalFailing?: { failures: number; since: string; lastError: string } | null;
}

const viewOf = async (sidecar: LaunchedSidecar): Promise<StartingView> => JSON.parse((await sidecar.admin('/identity')).body) as StartingView;

t.test('first start, CA refusing connections: /identity and doctor say why the sidecar is not ready', async (t) => {
  const caPort = await freePort();
  const sidecar = await launchSidecar(mesh.ca, { service: 'lonely', caUrl: `https://127.0.0.1:${caPort}`, inbound: { app: `http://127.0.0.1:${mesh.app.port}` }, namedPorts: true });
  t.teardown(() => sidecar.stop('SIGKILL'));

  // at least two failed requests (the second about a second after the first), well within the 30 s
  let view = await viewOf(sidecar);
  const deadline = performance.now() + 15_000;
  for (let i = 0; i < 300 && (view.renewalFailing?.failures ?? 0) < 2 && performance.now() < deadline; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    view = await viewOf(sidecar);
  }
  t.equal(view.status, 'starting', '/identity: still starting');
  t.equal(view.spiffeId, 'spiffe://mesh.local/svc/lonely');
  const failing = view.renewalFailing;
  t.ok((failing?.failures ?? 0) >= 2, `/identity: how many requests for the first SVID failed (${JSON.stringify(failing)})`);
  t.ok(Date.parse(failing?.since ?? '') <= Date.now() && Date.now() - Date.parse(failing?.since ?? '') < 20_000, 'since when: this start');
  t.match(failing?.lastError, new RegExp(`^the CA at https://127\\.0\\.0\\.1:${caPort} is unreachable: .*ECONNREFUSED`), '/identity: and the latest reason');
  t.same(JSON.parse((await sidecar.admin('/ready')).body), { status: 'starting' }, '/ready: starting');

  const doctor = formatResult(await checkAdmin(await loadSidecarConfig(sidecar.configFile)));
  t.match(doctor, new RegExp(`^✗ admin .*: the running sidecar is not ready \\(/ready 503 .*starting.*\\); \\d+ requests for its first SVID failed since \\S+, the latest: the CA at https://127\\.0\\.0\\.1:${caPort} is unreachable: .*ECONNREFUSED.* — fix: mend what the latest failure names`), `doctor names it: ${doctor}`);
});
