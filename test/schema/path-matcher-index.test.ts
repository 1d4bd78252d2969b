// src/schema/path-matcher.ts: a path tries only the templates that can match its first
// segment (those whose first segment is that literal, and those that start with a
// parameter), in the same order as trying all of them. Trying every template cost each
// unmatched request 3.4 ms with 10,000 of them.

import t from 'tap';
import { PathMatcher } from '../../src/schema/path-matcher.js';

t.test('10,000 templates: an unmatched path costs microseconds, a matched one finds its template', async (t) => {
  const templates = Array.from({ length: 10_000 }, (_, i) => ({ template: `/p${i}/{id}`, method: 'GET', value: i }));
  const matcher = new PathMatcher(templates);
  t.same(matcher.match('GET', '/p9999/7'), { value: 9999, params: { id: '7' } });
  const started = performance.now();
  for (let i = 0; i < 1_000; i++) matcher.match('GET', `/nowhere/${i}`);
  for (let i = 0; i < 1_000; i++) matcher.match('GET', `/p${i}/a/b`);
  const perRequestUs = ((performance.now() - started) * 1000) / 2_000;
  t.equal(matcher.match('GET', '/nowhere/1'), undefined);
  t.ok(perRequestUs < 200, `${perRequestUs.toFixed(1)} µs per unmatched path`);
});

t.test('the order of trial is the same as over one list: most literal first, ties in the order written', async (t) => {
  const matcher = new PathMatcher([
    { template: '/{tenant}/orders/{id}', method: 'GET', value: 'tenant-orders' },
    { template: '/orders/{id}/items', method: 'GET', value: 'order-items' },
    { template: '/orders/{id}', method: 'GET', value: 'order' },
    { template: '/{a}/{b}', method: 'GET', value: 'any-two' },
    { template: '/x/{b}', method: 'GET', value: 'x-first' },
    { template: '/{a}/y', method: 'GET', value: 'y-second' },
    { template: '/orders/{id}', method: 'PUT', value: 'put-order' },
  ]);
  t.equal(matcher.match('GET', '/orders/7')?.value, 'order', 'a literal first segment');
  t.equal(matcher.match('GET', '/orders/7/items')?.value, 'order-items', 'the longer literal wins');
  t.equal(matcher.match('GET', '/acme/orders/7')?.value, 'tenant-orders', 'a parameter first segment');
  t.equal(matcher.match('GET', '/orders/orders/7')?.value, 'tenant-orders', "'/orders/' and '/orders/…/items' cannot match: the parameter-first template can");
  t.equal(matcher.match('GET', '/x/y')?.value, 'x-first', 'a tie (both 3 literal characters): the one written first');
  t.equal(matcher.match('GET', '/q/r')?.value, 'any-two');
  t.equal(matcher.match('PUT', '/orders/7')?.value, 'put-order', 'per method');
  t.equal(matcher.match('DELETE', '/orders/7'), undefined);
});
