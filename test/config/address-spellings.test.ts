// One address in another spelling is the same address: the self-loop checks, the listener
// port-clash check and the CA's certificate names compare canonical forms, and an IPv6 zone id
// (%lo, %eth0) is refused where the address is dialled by URL (inbound.app) or written into a
// certificate (serverNames). A reviewer's configs: inbound.app [0:0:0:0:0:0:0:1]:PORT of its own
// outbound passed `meshcar check` and one request looped through the sidecar hundreds of times;
// inbound.app "h2c://[::1%lo]:18081" passed it and the first request killed the sidecar.

import t from 'tap';
import { join } from 'node:path';
import { BASE_CONFIG as BASE, configIssues as issuesOf, loadConfigText as load } from '../helpers/config-text.js';
import { ConfigError, formatIssue } from '../../src/config/issues.js';
import { loadCaConfig } from '../../src/config/ca-config.js';
import { canonicalHost, ipAddressBytes, isServerName, parseAppUrl, reachesListener, sameAddress } from '../../src/config/address.js';

t.test('canonical forms: IPv6 compressed and lower-cased, IPv4-mapped as IPv4, a zone kept', async (t) => {
  t.equal(canonicalHost('0:0:0:0:0:0:0:1'), '::1');
  t.equal(canonicalHost('FD00:0:0::0001'), 'fd00::1');
  t.equal(canonicalHost('::ffff:7f00:1'), '127.0.0.1');
  t.equal(canonicalHost('::FFFF:127.0.0.1'), '127.0.0.1');
  t.equal(canonicalHost('0:0:0:0:0:0:0:0'), '::');
  t.equal(canonicalHost('FE80:0::1%eth0'), 'fe80::1%eth0');
  t.equal(canonicalHost('Orders.Svc'), 'orders.svc');
  t.equal(canonicalHost('10.0.0.1'), '10.0.0.1');
});

t.test('sameAddress and reachesListener see through spellings', async (t) => {
  t.ok(sameAddress('0:0:0:0:0:0:0:1', '::1'));
  t.ok(sameAddress('::ffff:7f00:1', '127.0.0.1'));
  t.ok(sameAddress('::ffff:127.0.0.1', 'localhost'));
  t.notOk(sameAddress('::2', '::1'));
  t.notOk(sameAddress('fe80::1%eth0', 'fe80::1%eth1'), 'one address on two links is two addresses');
  t.ok(reachesListener({ host: '::1', port: 80 }, { host: '0:0:0:0:0:0:0:1', port: 80 }));
  t.ok(reachesListener({ host: '127.0.0.1', port: 80 }, { host: '::ffff:7f00:1', port: 80 }));
  t.ok(reachesListener({ host: '0:0:0:0:0:0:0:0', port: 80 }, { host: '127.0.0.2', port: 80 }), 'the wildcard in its long spelling');
  t.ok(reachesListener({ host: '::', port: 80 }, { host: '0::1', port: 80 }));
  t.notOk(reachesListener({ host: '::1', port: 80 }, { host: '0:0:0:0:0:0:0:1', port: 81 }));
});

t.test('IP SAN bytes: 4 or 16, no zone', async (t) => {
  t.same([...(ipAddressBytes('10.1.2.3') as Buffer)], [10, 1, 2, 3]);
  t.equal((ipAddressBytes('::1') as Buffer).toString('hex'), '00000000000000000000000000000001');
  t.equal((ipAddressBytes('fe80::1:2') as Buffer).toString('hex'), 'fe800000000000000000000000010002');
  t.equal((ipAddressBytes('::ffff:127.0.0.1') as Buffer).toString('hex'), '00000000000000000000ffff7f000001');
  t.equal((ipAddressBytes('1:2:3:4:5:6:7:8') as Buffer).toString('hex'), '00010002000300040005000600070008');
  t.equal(ipAddressBytes('::1%lo'), undefined);
  t.equal(ipAddressBytes('fe80::1%eth0'), undefined);
  t.equal(ipAddressBytes('localhost'), undefined);
  t.notOk(isServerName('::1%lo'));
  t.ok(isServerName('::1'));
});

t.test('inbound.app with a zone: one line naming the key', async (t) => {
  t.match(parseAppUrl('h2c://[::1%lo]:18081'), /with a zone \(::1%lo\) cannot be the app's address/);
  t.same(await issuesOf(t, BASE.replace('http://127.0.0.1:8080', '"h2c://[::1%lo]:18081"')), [
    `c.yaml:7:3: inbound.app: "h2c://[::1%lo]:18081" is not an app URL: an IPv6 address with a zone (::1%lo) cannot be the app's address: give ::1 or the app's address without %`,
  ]);
  t.same(await issuesOf(t, `${BASE.replace('http://127.0.0.1:8080', '"http://[fe80::1%eth0]:8080"')}http1: {appClient: undici}\n`), [
    `c.yaml:7:3: inbound.app: "http://[fe80::1%eth0]:8080" is not an app URL: an IPv6 address with a zone (fe80::1%eth0) cannot be the app's address: give ::1 or the app's address without %`,
  ]);
});

t.test('a self-loop in another spelling is refused', async (t) => {
  const base = BASE.replace('127.0.0.1:15443', '"[::1]:15443"');
  t.match(await issuesOf(t, base.replace('http://127.0.0.1:8080', '"http://[0:0:0:0:0:0:0:1]:15443"')), [/inbound\.app: \[0:0:0:0:0:0:0:1\]:15443 is inbound\.listen itself/]);
  // the reviewer's loop: the app is the outbound port, in the long spelling
  const viaOutbound = (app: string, listen = '"[::1]:15001"') => `${BASE.replace('http://127.0.0.1:8080', app)}outbound:\n  listen: ${listen}\n  upstreams:\n    self: {endpoints: ["127.0.0.1:15443"], identity: spiffe://mesh.local/svc/orders}\n`;
  t.match(await issuesOf(t, viaOutbound('"http://[0:0:0:0:0:0:0:1]:15001"')), [/inbound\.app: \[0:0:0:0:0:0:0:1\]:15001 is outbound\.listen/]);
  t.match(await issuesOf(t, viaOutbound('"http://[::ffff:7f00:1]:15001"', '127.0.0.1:15001')), [/inbound\.app: \[::ffff:7f00:1\]:15001 is outbound\.listen/]);
  t.match(await issuesOf(t, viaOutbound('"http://[::ffff:127.0.0.1]:15001"', '127.0.0.1:15001')), [/is outbound\.listen/]);
  // an endpoint that is outbound.listen in another spelling
  const endpoint = `${BASE}outbound:\n  listen: "[::1]:15001"\n  upstreams:\n    p: {endpoints: ["[0:0::1]:15001"], identity: spiffe://mesh.local/svc/p}\n`;
  t.match(await issuesOf(t, endpoint), [/endpoints\[0\]: "\[0:0::1\]:15001" is outbound\.listen/]);
});

t.test('listeners on one address in two spellings clash', async (t) => {
  const clash = BASE.replace('127.0.0.1:15443', '"[0:0:0:0:0:0:0:1]:18943"') + 'admin: {listen: "[::1]:18943"}\n';
  t.match(await issuesOf(t, clash), [/admin\.listen: \[::1\]:18943 clashes with inbound\.listen/]);
  const wildcard = BASE + 'admin: {listen: "[0:0:0:0:0:0:0:0]:15443"}\n';
  t.match(await issuesOf(t, wildcard), [/admin\.listen: .*:15443 clashes with inbound\.listen/], 'the wildcard in its long spelling');
  t.ok(await load(t, BASE + 'admin: {listen: "[::1]:15443"}\n'), '::1 and 127.0.0.1 are two addresses');
  // 0.0.0.0 takes the port on every IPv4 address only: Node binds [::1]:P beside it
  const anyV4 = BASE.replace('127.0.0.1:15443', '0.0.0.0:15443');
  t.ok(await load(t, anyV4 + 'admin: {listen: "[::1]:15443"}\n'), '0.0.0.0 and [::1] are two families');
  t.ok(await load(t, anyV4 + 'admin: {listen: "[0:0::1]:15443"}\n'), 'in the long spelling too');
  t.match(await issuesOf(t, anyV4 + 'admin: {listen: "[::ffff:127.0.0.1]:15443"}\n'), [/admin\.listen: .*:15443 clashes with inbound\.listen/], 'an IPv4-mapped address is IPv4');
  t.match(await issuesOf(t, anyV4 + 'admin: {listen: "localhost:15443"}\n'), [/admin\.listen: localhost:15443 clashes with inbound\.listen/], 'a host name may be IPv4');
  t.match(await issuesOf(t, BASE.replace('127.0.0.1:15443', '"[::]:15443"') + 'admin: {listen: "127.0.0.1:15443"}\n'), [/clashes with inbound\.listen/], ':: takes both families');
  t.match(await issuesOf(t, anyV4 + 'admin: {listen: "[::%lo]:15443"}\n'), [/clashes with inbound\.listen/], ':: with a zone is still every address (Node binds it dual-stack)');
  t.match(await issuesOf(t, BASE.replace('127.0.0.1:15443', '"[::1%lo]:15443"') + 'admin: {listen: "[::1]:15443"}\n'), [/clashes with inbound\.listen/], 'a zone does not make ::1 another address');
  t.ok(await load(t, BASE.replace('127.0.0.1:15443', '"[fe80::1%lo]:15443"') + 'admin: {listen: "[fe80::1%eth9]:15443"}\n'), 'a link-local address on two interfaces is two addresses');
});

t.test('CA serverNames: a zone is refused with a clear line', async (t) => {
  const dir = t.testdir({ 'ca.yaml': 'trustDomain: mesh.local\ndir: ca\nserverNames: [localhost, "::1%lo", "fe80::1%eth0", "0:0::1"]\n' });
  const err = await loadCaConfig(join(dir, 'ca.yaml')).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof ConfigError);
  t.same((err as ConfigError).issues.map((i) => formatIssue({ ...i, file: 'ca.yaml' })), [
    'ca.yaml:3:26: serverNames[1]: "::1%lo": an IPv6 address with a zone cannot be a certificate name; give it without %lo',
    'ca.yaml:3:36: serverNames[2]: "fe80::1%eth0": an IPv6 address with a zone cannot be a certificate name; give it without %eth0',
  ]);
});
