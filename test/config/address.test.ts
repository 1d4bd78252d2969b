import t from 'tap';
import { formatHostPort, isServerName, parseAppUrl, parseEndpoint, parseHostPort, parseHttpsUrl } from '../../src/config/address.js';

t.test('host:port', async (t) => {
  t.same(parseHostPort('127.0.0.1:8443'), { host: '127.0.0.1', port: 8443 });
  t.same(parseHostPort('localhost:1'), { host: 'localhost', port: 1 });
  t.same(parseHostPort('[::1]:65535'), { host: '::1', port: 65535 });
  t.same(parseHostPort('0.0.0.0:0', { allowPortZero: true }), { host: '0.0.0.0', port: 0 });
  t.match(parseHostPort('0.0.0.0:0'), /out of range \(1-65535\)/);
  t.match(parseHostPort('127.0.0.1:65536'), /out of range/);
  t.match(parseHostPort('127.0.0.1'), /give a port/);
  t.match(parseHostPort(':8080'), /give a host/);
  t.match(parseHostPort('::1:8080'), /brackets/);
  t.match(parseHostPort('[::1]8080'), /give a port after/);
  t.match(parseHostPort('[nope]:1'), /not an IPv6 address/);
  t.match(parseHostPort('999.1.1.1:80'), /neither an IPv4 address nor a host name/);
  t.match(parseHostPort('a_b:80'), /neither/);
  t.match(parseHostPort('host:80x'), /not a number/);
  t.match(parseHostPort('host:'), /empty/);
});

t.test('endpoints', async (t) => {
  t.same(parseEndpoint('10.0.0.1:16443'), { kind: 'static', host: '10.0.0.1', port: 16443 });
  t.same(parseEndpoint('dns:payments.svc:443'), { kind: 'dns', host: 'payments.svc', port: 443 });
  t.match(parseEndpoint('dns:10.0.0.1:443'), /takes a host name/);
  // its own form in the example, not a bare address's (README review)
  t.match(parseEndpoint('dns:payments'), /give a port, e.g. dns:orders\.default\.svc\.cluster\.local:15443$/);
  // absolute names: no search domain tried first (Kubernetes' ndots:5)
  t.same(parseEndpoint('dns:orders.default.svc.cluster.local.:15443'), { kind: 'dns', host: 'orders.default.svc.cluster.local.', port: 15443 });
  t.match(parseEndpoint('dns:orders..:15443'), /neither/);
  t.match(parseEndpoint('dns:.:15443'), /give a host|neither/);
  // Docker's and Compose's service names may hold underscores, and the system resolver looks
  // them up (getaddrinfo does not judge names): an upstream may be one, a listener or SAN not
  t.same(parseEndpoint('my_service:8080'), { kind: 'static', host: 'my_service', port: 8080 });
  t.same(parseEndpoint('dns:orders_api.compose_default:8080'), { kind: 'dns', host: 'orders_api.compose_default', port: 8080 });
  t.same(parseEndpoint('dns:_orders._tcp.mesh.:8080'), { kind: 'dns', host: '_orders._tcp.mesh.', port: 8080 });
  t.match(parseEndpoint('dns:a__-:80'), /neither/);
  t.match(parseEndpoint('dns:a b:80'), /neither/);
  t.notOk(isServerName('my_service'), 'no underscore in a certificate name');
  t.match(parseEndpoint('dns:10.0.0.1.:443'), /takes a host name/);
  // a zone cannot be in the origin URL the outbound pools sessions by (it threw Invalid URL at start)
  t.match(parseEndpoint('[fe80::1%eth0]:443'), /with a zone \(fe80::1%eth0\) cannot be an upstream endpoint/);
  t.same(parseEndpoint('[fd00::1]:443'), { kind: 'static', host: 'fd00::1', port: 443 });
  t.match(parseEndpoint('10.0.0.1:0'), /out of range/);
});

t.test('app URLs', async (t) => {
  t.same(parseAppUrl('http://127.0.0.1:8080'), { protocol: 'http', host: '127.0.0.1', port: 8080 });
  t.same(parseAppUrl('h2c://[::1]:50051/'), { protocol: 'h2c', host: '::1', port: 50051 });
  t.same(parseAppUrl('HTTP://app:80'), { protocol: 'http', host: 'app', port: 80 });
  t.match(parseAppUrl('https://127.0.0.1:8080'), /not https/);
  t.match(parseAppUrl('http://127.0.0.1:8080/api'), /no path/);
  t.match(parseAppUrl('http://127.0.0.1:8080?x=1'), /no path, query/);
  t.match(parseAppUrl('127.0.0.1:8080'), /write http:\/\/HOST:PORT/);
  t.match(parseAppUrl('http://127.0.0.1'), /give a port/);
});

t.test('CA URLs', async (t) => {
  const url = parseHttpsUrl('https://127.0.0.1:8443');
  t.ok(url instanceof URL);
  t.equal((url as URL).origin, 'https://127.0.0.1:8443');
  t.ok(parseHttpsUrl('https://ca.mesh.local/') instanceof URL);
  t.match(parseHttpsUrl('http://127.0.0.1:8443'), /over https/);
  t.match(parseHttpsUrl('https://u:p@ca:8443'), /credentials/);
  t.match(parseHttpsUrl('https://ca:8443/v1'), /no path/);
  t.match(parseHttpsUrl('not a url'), /not a URL/);
});

t.test('server names and formatting', async (t) => {
  t.ok(isServerName('localhost'));
  t.ok(isServerName('127.0.0.1'));
  t.ok(isServerName('::1'));
  t.notOk(isServerName('bad name'));
  t.notOk(isServerName('-x.example'));
  t.equal(formatHostPort({ host: '::1', port: 80 }), '[::1]:80');
  t.equal(formatHostPort({ host: 'a', port: 80 }), 'a:80');
});
