// doctor's CA check: the CA at identity.ca.url is reachable, chains to identity.ca.bundle and
// presents spiffe://<trust domain>/meshcar/ca, the same three things the sidecar demands.

import { caBundleProblem } from '../pki/ca-bundle.js';
import type { SidecarConfig } from '../config/sidecar-config.js';
import { caSpiffeId } from '../identity/spiffe-id.js';
import { fail, ok, warn, type CheckResult } from './result.js';
import { presentedUri, unchainedCa } from './foreign-ca.js';
import { CA_CLOCK_SKEW_MS, caClock, skewText } from './ca-clock.js';
import { dialTls, networkProblem, peerSpiffeId } from './probe.js';
import { readCheckedFile } from './read-file.js';

export async function checkCa(config: SidecarConfig): Promise<CheckResult | undefined> {
  if (config.identity.source !== 'ca') return undefined;
  const { url, bundle } = config.identity.ca;
  const name = `ca ${url}`;
  const target = new URL(url);
  const port = Number(target.port || 443);
  const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
  let ca: string;
  try {
    ca = await readCheckedFile(bundle);
  } catch (err) {
    return fail(name, `cannot read identity.ca.bundle ${bundle}: ${networkProblem(err)}`, 'point identity.ca.bundle at the bundle.pem of your CA folder');
  }
  // what check and run refuse (a leaf, a key, an empty file): said first, whether the CA is up or not
  const notABundle = caBundleProblem(ca);
  if (notABundle !== undefined) return fail(name, `identity.ca.bundle ${bundle}: ${notABundle}`, 'point identity.ca.bundle at the bundle.pem of your CA folder');
  const expected = caSpiffeId(config.trustDomain);
  const started = performance.now();
  let socket;
  try {
    socket = await dialTls({ host, port, ca, servername: host });
  } catch (err) {
    const problem = networkProblem(err);
    if (/not from a CA in our bundle/.test(problem)) {
      const { message, fix } = unchainedCa(url, bundle, expected, await presentedUri(host, port, host), problem);
      return fail(name, message, fix);
    }
    // a server answered, but not with TLS: starting the CA is not the fix, its address is
    if (/does not speak TLS/.test(problem)) return fail(name, `reachable, but not the meshcar CA: ${problem}`, `identity.ca.url must name the CA's listen address (meshcar ca serve), with https://`);
    // a CA that answered with a certificate out of its dates is up: "unreachable" sent the
    // reader to start a CA that runs, when a clock is what to look at
    if (/has expired|not valid yet/.test(problem)) return fail(name, `reachable, but its certificate cannot be used now: ${problem}`, "the CA renews its serving certificate itself, a day at a time: compare this host's clock with the CA host's (one far off reads a valid certificate as expired or not yet valid), and check that the CA process is not stopped");
    return fail(name, `unreachable: ${problem}`, `start the CA (meshcar ca serve --config FILE) or correct identity.ca.url; a running sidecar keeps its SVID meanwhile`);
  }
  const rtt = performance.now() - started;
  const peer = peerSpiffeId(socket);
  if ('problem' in peer || peer.id !== expected) socket.destroy();
  if ('problem' in peer) return fail(name, `not the meshcar CA: ${peer.problem}`, 'correct identity.ca.url');
  if (peer.id !== expected) {
    return fail(name, `the server is ${peer.id}, expected ${expected}`, peer.id.endsWith('/meshcar/ca') ? 'trustDomain differs from the CA\'s: set trustDomain to the CA\'s trust domain, or use the CA of this one' : 'correct identity.ca.url');
  }
  const found = `reachable, presents ${expected}, chains to ${bundle} (handshake ${rtt.toFixed(1)} ms)`;
  const clock = await caClock(socket, target.host);
  // TLS and then nothing: the sidecar's requests would hang alike
  if ('noAnswer' in clock) return warn(name, `${found}, but it did not answer over HTTP: ${clock.noAnswer}`, 'the CA process may be stuck: its log says why; a sidecar asking it now waits out its request timeout');
  const ahead = 'aheadMs' in clock ? clock.aheadMs : undefined;
  if (ahead !== undefined && Math.abs(ahead) > CA_CLOCK_SKEW_MS) {
    const where = ahead > 0 ? `${skewText(ahead)} ahead of this host's` : `${skewText(ahead)} behind this host's`;
    const effect = ahead > 0 ? 'the SVIDs it issues start in this host\'s future, past the minute they are backdated: meshcar run refuses them at start' : 'the SVIDs it issues look older here than they are, and end sooner by this host\'s clock';
    return warn(name, `${found}, but its clock reads ${where} (its Date field): ${effect}`, "set both hosts' clocks right (NTP): timedatectl status shows whether this one is synchronised");
  }
  return ok(name, found);
}
