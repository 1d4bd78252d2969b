// The route labelers' path caches share one budget for the whole process. Each labeler (one per
// direction and peer, up to 1,000 peers) remembered up to 2,048 paths of up to 256 characters:
// a hub with many callers, each calling many distinct paths, could hold ~600 MB in them. Here
// 60 labelers each see 2,048 distinct 200-character paths (122,880 in all): what they hold
// together stays within the process-wide budget, and a labeler still answers from its cache.
// One peer calling ever new paths (ids in the URL) empties only its own cache, not the others'.

import t from 'tap';
import { RouteCacheBudget, RouteLabeler } from '../../src/metrics/route-templates.js';

// each case a budget of its own (the labelers of a sidecar share the process's), of the same size
t.test("one peer calling ever new paths starts its own cache afresh, not the others'", async (t) => {
  const budget = new RouteCacheBudget();
  // 8 × 1,850 steady paths (14,800): with the noisy peer's own 2,048 the budget is spent
  const quiet = Array.from({ length: 8 }, () => new RouteLabeler([], 100, budget));
  for (const [peer, labeler] of quiet.entries()) for (let i = 0; i < 1850; i++) labeler.routeOf(`/quiet${peer}/items/${i}`);
  const noisy = new RouteLabeler([], 100, budget);
  for (let i = 0; i < 3 * budget.limit; i++) noisy.routeOf(`/search/${i}?q=${i}`);
  t.same(
    quiet.map((l) => l.cachedPaths),
    quiet.map(() => 1850),
    'every quiet peer still remembers its 1,850 paths',
  );
  t.ok(noisy.cachedPaths <= 2048, `the noisy one holds at most its own cap (${noisy.cachedPaths})`);
});

t.test('all labelers together remember at most the process-wide budget of paths', async (t) => {
  const budget = new RouteCacheBudget();
  const labelers = Array.from({ length: 60 }, () => new RouteLabeler([], 100, budget));
  const filler = 'x'.repeat(180);
  let mostHeld = 0;
  for (const [peer, labeler] of labelers.entries()) {
    for (let i = 0; i < 2048; i++) labeler.routeOf(`/p${peer}/${filler}/item-${i}?q=${i}`);
    const held = labelers.reduce((sum, l) => sum + l.cachedPaths, 0);
    mostHeld = Math.max(mostHeld, held);
  }
  t.ok(mostHeld <= budget.limit, `at most ${budget.limit} paths held at any time (most: ${mostHeld})`);
  t.ok(budget.limit < 60 * 2048, 'the budget is below what the labelers would hold each on its own');
});

t.test('within the budget a path is remembered, and its route is the same after a clear', async (t) => {
  const budget = new RouteCacheBudget();
  const labeler = new RouteLabeler(['/orders/{id}'], 100, budget);
  const first = labeler.routeOf('/orders/42');
  t.equal(first, '/orders/{id}');
  t.ok(labeler.cachedPaths >= 1, 'the path is remembered');
  // spend the whole budget elsewhere: its route stays the same whether its cache kept the path or not
  const other = new RouteLabeler([], 100, budget);
  for (let i = 0; i <= budget.limit; i++) other.routeOf(`/spend/${i % 2048}/${i}`);
  t.equal(labeler.routeOf('/orders/42'), first, 'the same route once forgotten');
});
