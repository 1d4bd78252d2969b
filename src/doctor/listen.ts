// doctor's check of the sidecar's own listen addresses (inbound.listen, outbound.listen): when
// no sidecar runs with this config, each is bound for a moment and let go, as `meshcar run`
// would bind it. Without it a port another program held passed doctor ("all checks passed")
// and `run` then exited with listen_failed.

import net from 'node:net';
import { formatHostPort, type HostPort } from '../config/address.js';
import type { SidecarConfig } from '../config/sidecar-config.js';
import { fail, ok, warn, type CheckResult } from './result.js';

/**
 * `sidecarRuns`: whether the admin check found this config's sidecar running (then its ports are
 * its own: not checked), 'unknown' when it cannot tell (admin.listen has port 0, or something
 * there took the connection and never answered, a hung sidecar perhaps: a port in use may be
 * that sidecar's, so it is a warning).
 */
export async function checkListeners(config: SidecarConfig, sidecarRuns: boolean | 'unknown'): Promise<CheckResult[]> {
  if (sidecarRuns === true) return [];
  const sides = [
    ['inbound', config.inbound?.listen],
    ['outbound', config.outbound?.listen],
  ] as const;
  const results: CheckResult[] = [];
  for (const [side, listen] of sides) {
    if (listen === undefined) continue;
    const name = `${side} listen ${formatHostPort(listen)}`;
    if (listen.port === 0) {
      results.push(ok(name, 'port 0: the system picks a free port at start'));
      continue;
    }
    const problem = await bindProblem(listen);
    if (problem === undefined) {
      results.push(ok(name, 'free: the sidecar can listen there'));
      continue;
    }
    const message = `${problem.message}: meshcar run would exit (listen_failed)`;
    if (sidecarRuns === 'unknown' && problem.code === 'EADDRINUSE') results.push(warn(name, `${message}, unless it is this sidecar's own, which doctor cannot tell here (admin.listen has port 0, or the admin port gave no answer in time)`, `if no sidecar of this config runs, stop what listens there (ss -ltnp names it), or choose another ${side}.listen`));
    else results.push(fail(name, message, fixFor(problem.code, side)));
  }
  return results;
}

/** Binds `listen` and lets it go at once; the error a bind gave, or undefined. */
function bindProblem(listen: HostPort): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    server.listen({ host: listen.host, port: listen.port }, () => server.close(() => resolve(undefined)));
  });
}

function fixFor(code: string | undefined, side: string): string {
  if (code === 'EACCES') return `ports below 1024 need privileges: choose a port from 1024 in ${side}.listen`;
  if (code === 'EADDRNOTAVAIL') return `no interface of this host has that address: correct ${side}.listen`;
  return `stop what listens there (ss -ltnp names it), or choose another ${side}.listen`;
}
