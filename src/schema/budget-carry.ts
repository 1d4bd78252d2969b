// A reload's OpenAPI checks take over the body budgets (body-budget.ts) of the checks they
// replace, inbound and per upstream: the bodies read at that moment go on counting against the
// same budget, now with the new maxBuffered. Every reload builds new guards (each spec is read
// again), and each used to start an empty budget while the bodies in flight held the old one:
// a body held across k reloads let k + 1 budgets fill, so an app or a caller trickling bodies
// while the config was reloaded every few seconds held memory without bound.

import type { SchemaGuard } from './guard.js';
import type { Guards } from './guards.js';

/**
 * `next` with each guard on the budget of the running guard in its place (same key), its limit
 * set to the new one; a guard with none in its place keeps its own. Changes the running
 * budgets' limits: call it when the reload is applied, never before (an aborted one changes nothing).
 */
export function carryBudgets(running: Guards, next: Guards): Guards {
  const carry = (old: SchemaGuard | undefined, guard: SchemaGuard): SchemaGuard => {
    if (old === undefined || old.budget === guard.budget) return guard;
    old.budget.limit = guard.budget.limit;
    old.budget.maxBodySize = guard.budget.maxBodySize;
    return { ...guard, budget: old.budget };
  };
  return {
    inbound: next.inbound && carry(running.inbound, next.inbound),
    upstreams: new Map([...next.upstreams].map(([name, guard]) => [name, carry(running.upstreams.get(name), guard)] as const)),
  };
}
