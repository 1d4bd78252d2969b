// An inbound route that an earlier one shadows (the same exact path twice, `/api/orders` after
// `/api/*`) never applies, since the first matching route wins: a valid config, warned about in
// one line that names both entries. The warning agrees with the matcher itself: over generated
// route lists, a route it names is never the one InboundTimeouts picks, and every route it does
// not name is picked for some path.

import t from 'tap';
import fc from 'fast-check';
import { configWarnings } from '../../src/config/config-warnings.js';
import { shadowedRoutes } from '../../src/config/inbound-routes-warning.js';
import { InboundTimeouts } from '../../src/inbound/timeouts.js';
import { BASE_CONFIG, loadConfigText } from '../helpers/config-text.js';
import { makePki } from '../helpers/pki.js';
import { check, writeOrdersConfig } from '../helpers/config-warning-runs.js';

const routesYaml = (paths: string[]) => ['  routes:', ...paths.map((path, i) => `    - {path: "${path}", timeout: ${i + 1}s}`)];

async function warningsFor(t: Tap.Test, paths: string[]): Promise<string[]> {
  const config = await loadConfigText(t, `${BASE_CONFIG}${routesYaml(paths).join('\n')}\n`);
  return configWarnings(config, 'c.yaml');
}

const line = (index: number, path: string, by: number, first: string, what: string) =>
  `c.yaml: inbound.routes[${index}] (${path}) never applies: inbound.routes[${by}] (${first}) comes first and matches ${what}; the first matching route wins, so put the narrower one first`;

t.test('a shadowed route: one line naming both entries', async (t) => {
  t.same(await warningsFor(t, ['/api/orders', '/api/orders']), [line(1, '/api/orders', 0, '/api/orders', 'the same path')], 'an exact path twice');
  t.same(await warningsFor(t, ['/api/*', '/api/orders']), [line(1, '/api/orders', 0, '/api/*', 'every path it matches')], 'an exact path after a prefix');
  t.same(await warningsFor(t, ['/api/*', '/api/orders/*']), [line(1, '/api/orders/*', 0, '/api/*', 'every path it matches')], 'a prefix after a shorter one');
  t.same(await warningsFor(t, ['/a*', '/x', '/a/b', '/a/*']), [line(2, '/a/b', 0, '/a*', 'every path it matches'), line(3, '/a/*', 0, '/a*', 'every path it matches')], 'each one, by the first that shadows it');
});

t.test('routes that can apply: none', async (t) => {
  t.same(await warningsFor(t, ['/api/orders', '/api/*']), [], 'the narrower first');
  t.same(await warningsFor(t, ['/api/orders/*', '/api/*']), [], 'the longer prefix first');
  t.same(await warningsFor(t, ['/api/*', '/apx', '/ap']), [], 'paths the prefix does not match');
  t.same(await warningsFor(t, ['/api/orders']), [], 'one route');
});

t.test('the warning agrees with the matcher over generated routes', async (t) => {
  const letters = ['/', 'a', 'b'];
  const segment = fc.array(fc.constantFrom(...letters), { minLength: 0, maxLength: 3 }).map((cs) => `/${cs.join('')}`);
  const route = fc.tuple(segment, fc.boolean()).map(([path, prefix]) => (prefix ? `${path}*` : path));
  // every path of up to 7 characters over the same letters: longer than any route by 3, more
  // than enough to reach a prefix route past the exact routes before it (4 routes at most)
  const witnesses: string[] = [];
  const grow = (path: string): void => {
    witnesses.push(path);
    if (path.length < 7) for (const c of letters) grow(path + c);
  };
  grow('/');
  fc.assert(
    fc.property(fc.array(route, { minLength: 1, maxLength: 4 }), (paths) => {
      const timeouts = new InboundTimeouts({ timeoutMs: 0, routes: paths.map((path, i) => ({ path, timeoutMs: i + 1 })) });
      const picked = new Set(witnesses.map((path) => timeouts.forPath(path).timeoutMs - 1).filter((i) => i >= 0));
      const shadowed = new Set(shadowedRoutes(paths.map((path) => ({ path }))).map((s) => s.index));
      return paths.every((_, i) => picked.has(i) !== shadowed.has(i));
    }),
    { numRuns: 300 },
  );
  t.pass('300 route lists: named routes never picked, every other route picked for some path');
});

t.test('meshcar check prints it', async (t) => {
  const pki = await makePki('mesh.local');
  const inbound = ['inbound:', '  listen: "127.0.0.1:0"', '  app: http://127.0.0.1:1', ...routesYaml(['/api/*', '/api/orders'])];
  const file = await writeOrdersConfig(t.testdir(), pki, inbound);
  const result = await check(file);
  t.equal(result.status, 0, 'a warning does not fail the check');
  t.same(result.stderr, [`meshcar: warning: ${line(1, '/api/orders', 0, '/api/*', 'every path it matches').replace('c.yaml', file)}`]);
});

// the bad-input review: each route was checked against every earlier one, so the cost grew with
// the square of the list (12,000 routes: `meshcar check` 7.5 s, a reload's /ready unanswered 6.8 s)
t.test('a long route list is judged in time that grows with its length, not its square', async (t) => {
  const routes = Array.from({ length: 24_000 }, (_, i) => ({ path: i % 2 === 0 ? `/svc/${i}/items` : `/svc/${i}/*` }));
  routes.push({ path: '/svc/1/items/42' }); // shadowed by /svc/1/*
  const started = performance.now();
  const shadowed = shadowedRoutes(routes);
  const took = performance.now() - started;
  t.same(shadowed, [{ index: 24_000, by: 1 }], 'the one shadowed route, by the first that covers it');
  t.ok(took < 1_000, `24,001 routes judged in ${Math.round(took)} ms`);
});

// its review: looking each prefix up as a string cost the square of a path's length (64 paths of
// 16,000 characters in a 1 MiB config: `meshcar check` 13.5 s); by rolling hashes now
t.test('long paths are judged in time that grows with their length, not its square', async (t) => {
  const long = 'x'.repeat(16_000);
  const routes = Array.from({ length: 64 }, (_, i) => ({ path: `/${i}${long}${i % 2 === 0 ? '*' : ''}` }));
  routes.push({ path: `/0${long}/tail` }); // shadowed by the first
  const started = performance.now();
  const shadowed = shadowedRoutes(routes);
  const took = performance.now() - started;
  t.same(shadowed, [{ index: 64, by: 0 }]);
  t.ok(took < 1_000, `64 paths of 16,000 characters judged in ${Math.round(took)} ms`);
});

/** The definition: each route against every earlier one, the first that covers it. */
function shadowedByDefinition(paths: readonly string[]): { index: number; by: number }[] {
  const covers = (earlier: string, later: string) => (earlier.endsWith('*') ? (later.endsWith('*') ? later.slice(0, -1) : later).startsWith(earlier.slice(0, -1)) : earlier === later);
  return paths.flatMap((path, index) => {
    const by = paths.findIndex((earlier, before) => before < index && covers(earlier, path));
    return by >= 0 ? [{ index, by }] : [];
  });
}

t.test('the same routes named as by the definition (1,000 random lists over a small alphabet)', async (t) => {
  const path = fc.tuple(fc.array(fc.constantFrom('/', 'a', 'b'), { maxLength: 6 }).map((chars) => chars.join('')), fc.boolean()).map(([text, star]) => `/${text}${star ? '*' : ''}`);
  fc.assert(
    fc.property(fc.array(path, { maxLength: 12 }), (paths) => JSON.stringify(shadowedRoutes(paths.map((p) => ({ path: p })))) === JSON.stringify(shadowedByDefinition(paths))),
    { numRuns: 1_000 },
  );
  t.pass('1,000 lists: the same routes, shadowed by the same first route');
});
