// The authority grammar both sidecars hold Host and :authority to (src/http/authority.ts): the
// hosts real clients send pass; what the reviewer saw routed or passed on unchanged is refused,
// each with its reason.

import t from 'tap';
import { authorityProblem, authoritySyntaxProblem } from '../../src/http/authority.js';

t.test('real hosts pass', async (t) => {
  const good = ['', 'payments', 'Payments:8080', 'payments:', 'payments.', 'payments.svc.cluster.local.:443', 'my_service', '127.0.0.1', '127.0.0.1:9', '[::1]', '[::1]:8080', '[::1]:', '[FE80::1]:443', '[::ffff:127.0.0.1]:80', 'a:65535', 'a:1', 'a:080', 'xn--bcher-kva.example', 'a%2Db'];
  for (const authority of good) t.equal(authoritySyntaxProblem(authority), undefined, JSON.stringify(authority));
});

t.test('malformed authorities are refused with the reason', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['[a]', /"a" in brackets is not an IPv6 address/],
    ['[a]:80', /"a" in brackets is not an IPv6 address/],
    ['[A.]:0', /"A\." in brackets is not an IPv6 address/],
    ['[]', /"" in brackets is not an IPv6 address/],
    ['[1.2.3.4]', /not an IPv6 address/],
    ['[v1.x]', /not an IPv6 address/],
    ['[::1%25eth0]', /zone id/],
    ['[fe80::1%eth0]:80', /zone id/],
    ['[::1', /no closing \]/],
    ['[::1]x', /only a :port may follow/],
    ['[::1]:99999', /port 99999 is not one of 1-65535/],
    ['[::1]:8x', /port "8x" is not digits/],
    ['a:99999', /port 99999 is not one of 1-65535/],
    ['a:65536', /port 65536/],
    ['a:0', /port 0 is not one of 1-65535/],
    ['a:00', /port 00 is not one of/],
    ['a:-1', /not digits/],
    ['a:+80', /not digits/],
    ['a: 80', /not digits/],
    ['::1', /more than one :/],
    ['::1:80', /more than one :/],
    ['payments:1:2', /more than one :/],
    [':80', /no host before the port/],
    ['a]b:1', /character/],
    ['a[b', /character/],
    ['a/b', /character/],
    ['a@b', /character/],
    ['a b', /character/],
    ['a%zz', /% not followed by two hex digits/],
    ['bücher', /character/],
  ];
  for (const [authority, reason] of bad) t.match(authoritySyntaxProblem(authority), reason, JSON.stringify(authority));
});

t.test('authorityProblem names the field and its value', async (t) => {
  t.equal(authorityProblem('[a]:80', undefined), 'the request\'s authority "[a]:80" is not a host with an optional numeric port: "a" in brackets is not an IPv6 address');
  t.equal(authorityProblem(undefined, 'a:99999'), 'the request\'s Host "a:99999" is not a host with an optional numeric port: its port 99999 is not one of 1-65535');
  t.equal(authorityProblem('[::1]:8080', '[::1]:8080'), undefined, 'the same authority in both');
  t.equal(authorityProblem('orders', 'ORDERS'), undefined, 'Host compared without case');
  t.match(authorityProblem('orders', 'payments'), /differ/);
  t.equal(authorityProblem('orders', ['orders', 'orders']), 'the request has more than one Host header');
});
