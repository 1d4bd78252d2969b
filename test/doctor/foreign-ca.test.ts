// doctor's CA check when what serves identity.ca.url does not chain to identity.ca.bundle: its
// certificate is read (unverified) so the fix fits. Our trust domain's CA with a bundle from
// elsewhere: use that CA's bundle.pem. Another trust domain's CA (a wrong port landing on another
// mesh's CA) or a server that is no meshcar CA (a web server): correct identity.ca.url. The bundle
// fix was given for all three; followed for another mesh's CA, the next run said to change
// trustDomain, which moves the sidecar into the wrong mesh.

import t from 'tap';
import https from 'node:https';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { caUrlConfig } from '../helpers/ca-url-config.js';
import { makePki, type IssuedLeaf } from '../helpers/pki.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { checkCa } from '../../src/doctor/ca.js';
import { PROBE_TIMEOUT_MS, setProbeTimeout } from '../../src/doctor/probe.js';

async function checkAgainst(t: Tap.Test, served: IssuedLeaf, bundlePem: string, onlyFirst = false) {
  const server = https.createServer({ cert: served.chainPem, key: served.privateKeyPem }, (_req, res) => res.end('{}'));
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  let port = (server.address() as AddressInfo).port;
  if (onlyFirst) {
    // the first connection reaches the server; every later one is taken and never answered
    const upstream = port;
    let first = true;
    const held: net.Socket[] = [];
    const front = net.createServer((socket) => {
      if (!first) return void held.push(socket);
      first = false;
      const back = net.connect(upstream, '127.0.0.1');
      socket.pipe(back).pipe(socket);
      socket.on('error', () => back.destroy());
      back.on('error', () => socket.destroy());
    });
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    t.teardown(() => {
      held.forEach((s) => s.destroy());
      front.close();
    });
    port = (front.address() as AddressInfo).port;
  }
  return checkCa(await loadSidecarConfig(await caUrlConfig(t, port, bundlePem)));
}

t.test('the bundle fix only for our own CA; another mesh\'s CA or a plain web server: correct the URL', async (t) => {
  const ours = await makePki('mesh.local');
  const elsewhere = await makePki('mesh.local');
  const other = await makePki('other.local');
  const options = { serverNames: ['127.0.0.1'] };

  const ownCa = await checkAgainst(t, await elsewhere.issue('spiffe://mesh.local/meshcar/ca', options), ours.bundlePem);
  t.equal(ownCa?.status, 'fail');
  t.match(ownCa?.message, /^the CA's certificate does not chain to identity\.ca\.bundle /);
  t.match(ownCa?.fix, /^use the bundle\.pem of the CA that serves /, 'our CA, another bundle: the bundle is the fix');

  const otherMesh = await checkAgainst(t, await other.issue('spiffe://other.local/meshcar/ca', options), ours.bundlePem);
  t.match(otherMesh?.message, /^the server is the meshcar CA of another trust domain \(spiffe:\/\/other\.local\/meshcar\/ca\), not spiffe:\/\/mesh\.local\/meshcar\/ca/);
  t.match(otherMesh?.fix, /^correct identity\.ca\.url to this mesh's CA/, 'never "use its bundle" nor "set trustDomain"');

  const web = await checkAgainst(t, await other.issueWithUris([], options), ours.bundlePem);
  t.match(web?.message, /^reachable, but not the meshcar CA: its certificate names no SPIFFE ID/);
  t.match(web?.fix, /identity\.ca\.url must name the CA's listen address \(meshcar ca serve\): correct it/);
});

t.test("its certificate could not be read on a second look (no answer): the bundle fix stays, said as unsure, never 'names no SPIFFE ID'", async (t) => {
  setProbeTimeout(500);
  t.teardown(() => setProbeTimeout(PROBE_TIMEOUT_MS));
  const ours = await makePki('mesh.local');
  const elsewhere = await makePki('mesh.local');
  const result = await checkAgainst(t, await elsewhere.issue('spiffe://mesh.local/meshcar/ca', { serverNames: ['127.0.0.1'] }), ours.bundlePem, true);
  t.match(result?.message, /^the CA's certificate does not chain to identity\.ca\.bundle .*\(doctor could not read what it presents: /);
  t.match(result?.fix, /^use the bundle\.pem of the CA that serves .*; if what serves .* is no meshcar CA of this trust domain, correct identity\.ca\.url instead/);
  t.notMatch(result?.message, /names no SPIFFE ID/);
});

// the issuer alone (issuer.crt, say) named as identity.ca.bundle: OpenSSL says UNABLE_TO_GET_ISSUER_CERT,
// which doctor did not know, so it said "unreachable ... start the CA" of a CA that was up (review)
t.test('issuer.crt as identity.ca.bundle: the CA is up, its certificate does not chain to the bundle', async (t) => {
  const ours = await makePki('mesh.local');
  const leaf = await ours.issue('spiffe://mesh.local/svc/orders');
  // the intermediate without the root (a CA certificate, so the bundle's own check passes it): the issuer's issuer is missing
  const issuerOnly = [...leaf.chainPem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)][1]?.[0] ?? '';
  const result = await checkAgainst(t, await ours.issue('spiffe://mesh.local/meshcar/ca', { serverNames: ['127.0.0.1'] }), issuerOnly);
  t.equal(result?.status, 'fail');
  t.notMatch(result?.message, /unreachable/, `not "unreachable" (${result?.message})`);
  t.match(result?.message, /^the CA's certificate does not chain to identity\.ca\.bundle /);
});

// what check and run refuse, doctor said only "unreachable ... start the CA" of while the CA was down (a review)
t.test('a leaf as identity.ca.bundle, the CA down: doctor names the bundle, as check and run do', async (t) => {
  const ours = await makePki('mesh.local');
  const leaf = await ours.issue('spiffe://mesh.local/svc/orders');
  const result = await checkCa(await loadSidecarConfig(await caUrlConfig(t, 1, leaf.chainPem)));
  t.equal(result?.status, 'fail');
  t.match(result?.message, /^identity\.ca\.bundle \S+: certificate 1 \(spiffe:\/\/mesh\.local\/svc\/orders\) is not a CA certificate/, `the bundle, not "unreachable" (${result?.message})`);
});
