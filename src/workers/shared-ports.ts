// Listen port 0 ("any free port") with workers > 1: the primary picks the port before it forks,
// and every worker, the replacements too, listens on that port by number. node:cluster shares
// one socket per listen address among the workers, keyed by the port they ask for, and closes
// it once its last worker exits: replacements that asked for port 0 again, after every worker
// had died at once (or in a crash loop), got a new port, while /ready said 200 and the port
// announced at start refused every connection. The config itself keeps port 0 (a reload
// compares it with the file); only the bind uses the picked port. The port is free when picked
// and let go at once: a process that takes it before the first worker binds fails the start
// (listen_failed), as a busy configured port does.

import net from 'node:net';
import type { SidecarConfig } from '../config/sidecar-config.js';
import { formatHostPort, type HostPort } from '../config/address.js';
import { listenFailed } from '../errors.js';

/** The ports the workers bind in place of a configured 0, per side. */
export interface ListenPorts {
  readonly inbound?: number;
  readonly outbound?: number;
}

/** A port free on `listen`'s host now: bound on port 0 and let go; `side` names whose listen it is. */
async function freePortOn(listen: HostPort, side: 'inbound' | 'outbound'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    // the same words as the side's own bind would say (an address this host does not have)
    server.once('error', (err) => reject(listenFailed(`${side} cannot listen on ${formatHostPort(listen)} (${side}.listen)`, err)));
    server.listen({ host: listen.host, port: 0, exclusive: true }, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** For each side whose listen port is 0, a port picked now; the others as configured (absent). */
export async function pickSharedPorts(config: SidecarConfig): Promise<ListenPorts> {
  const [inbound, outbound] = await Promise.all(
    (['inbound', 'outbound'] as const).map((key) => {
      const side = config[key];
      return side && side.listen.port === 0 ? freePortOn(side.listen, key) : undefined;
    }),
  );
  return { ...(inbound !== undefined ? { inbound } : {}), ...(outbound !== undefined ? { outbound } : {}) };
}

/** `listen` with the picked port in place of 0 (as it is otherwise). */
export function boundAt(listen: HostPort, port: number | undefined): HostPort {
  return port !== undefined && listen.port === 0 ? { ...listen, port } : listen;
}

