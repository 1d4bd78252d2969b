// Applying a reload to the live parts (src/reload-apply.ts) costs time linear in the upstreams:
// each upstream's route templates go to the traffic metrics by name, for every upstream that
// runs or ran. The parts here are stand-ins that record what they are handed.

import t from 'tap';
import pino from 'pino';
import { applyLiveReload, type LiveParts } from '../src/reload-apply.js';
import type { ReloadPlan } from '../src/config/reload-plan.js';
import type { SidecarConfig } from '../src/config/sidecar-config.js';
import type { Guards } from '../src/schema/guards.js';

t.test('20,000 upstreams: each one\'s routes set by name, at once', async (t) => {
  const upstream = (i: number) => ({ name: `u${i}`, routes: i % 2 === 0 ? [`/r${i}/{id}`] : undefined });
  const log = { level: 'info', access: false };
  const metrics = { requests: true };
  // u0 runs and goes away; the new file has u1 to u20000
  const running = { outbound: { upstreams: [upstream(0)] }, log, metrics } as unknown as SidecarConfig;
  const effective = { outbound: { upstreams: Array.from({ length: 20_000 }, (_, i) => upstream(i + 1)) }, admin: { hosts: [] }, log, metrics } as unknown as SidecarConfig;
  const plan: ReloadPlan = { effective, applied: ['outbound.upstreams.u1.endpoints'], restartRequired: [], identityChanged: [] };
  const set = new Map<string, readonly string[] | undefined>();
  let handed: unknown;
  const parts = {
    inbound: undefined,
    outbound: { setUpstreams: (list: unknown) => void (handed = list), setSchemas: () => {} },
    admin: undefined,
    traffic: { setRoutes: (name: string, routes: readonly string[] | undefined) => void set.set(name, routes) },
    observers: { switchTo: () => {} },
    logger: pino({ level: 'silent' }),
  } as unknown as LiveParts;
  // CPU time, not wall time: the call is synchronous, and a loaded machine can take the core away
  // from it for longer than the bound
  const started = process.cpuUsage();
  applyLiveReload(parts, running, plan, { inbound: undefined, upstreams: new Map() } as unknown as Guards);
  const used = process.cpuUsage(started);
  const took = (used.user + used.system) / 1000;
  t.equal(handed, effective.outbound!.upstreams, 'the outbound gets the new list');
  t.equal(set.size, 20_001, 'every upstream that runs or ran');
  t.equal(set.get('u0'), undefined, 'one gone: its routes dropped');
  t.same(set.get('u2'), ['/r2/{id}']);
  t.equal(set.get('u3'), undefined);
  t.same(set.get('u20000'), ['/r20000/{id}']);
  // a find() per name took 1.5 s here (200 million comparisons)
  t.ok(took < 300, `applied in ${Math.round(took)} ms of CPU`);
});
