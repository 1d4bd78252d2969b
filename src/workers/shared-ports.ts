// Listen port 0 ("any free port") with workers > 1: the primary picks the port before it forks,
// and every worker, the replacements too, listens on that port by number. node:cluster shares
// one socket per listen address among the workers, keyed by the port they ask for, and closes
// it once its last worker exits: replacements that asked for port 0 again, after every worker
// had died at once (or in a crash loop), got a new port, while /ready said 200 and the port
// announced at start refused every connection. The config itself keeps port 0 (a reload
// compares it with the file); only the bind uses the picked port.
//
// The primary keeps the picked port bound until the first worker asks node:cluster to listen
// there (the port keeper lets it go in that turn, port-keeper.ts). Let go at once, as it was, the
// port stayed free for the workers' whole start (a fork, loading, the config: hundreds of ms),
// and a port-0 bind or a client socket elsewhere on the host could take it meanwhile: the start
// failed with listen_failed (a CI run lost a sidecar start to exactly that).

import net from 'node:net';
import type { SidecarConfig } from '../config/sidecar-config.js';
import { formatHostPort, type HostPort } from '../config/address.js';
import { listenFailed } from '../errors.js';

/** The ports the workers bind in place of a configured 0, per side. */
export interface ListenPorts {
  readonly inbound?: number;
  readonly outbound?: number;
}

/** A picked port, still bound by the primary until a worker asks for it. */
export interface HeldPort {
  readonly port: number;
  readonly server: net.Server;
}

/** The ports picked for the workers (per side) and the listeners holding them meanwhile. */
export interface PickedPorts {
  readonly ports: ListenPorts;
  readonly held: readonly HeldPort[];
}

/** A port free on `listen`'s host, bound on port 0 and held; `side` names whose listen it is. */
async function holdFreePortOn(listen: HostPort, side: 'inbound' | 'outbound'): Promise<HeldPort> {
  // nothing knows the port before the start reports it: whatever connects is closed unread
  const server = net.createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    // the same words as the side's own bind would say (an address this host does not have)
    const refused = (err: Error) => reject(listenFailed(`${side} cannot listen on ${formatHostPort(listen)} (${side}.listen)`, err));
    server.once('error', refused);
    server.listen({ host: listen.host, port: 0, exclusive: true }, () => {
      // later errors (a failed accept) are the port keeper's to hear (adopt)
      server.off('error', refused);
      resolve();
    });
  });
  return { port: (server.address() as net.AddressInfo).port, server };
}

/** For each side whose listen port is 0, a port picked and held now; the others as configured (absent). */
export async function pickSharedPorts(config: SidecarConfig): Promise<PickedPorts> {
  const picks = await Promise.allSettled(
    (['inbound', 'outbound'] as const).map((key) => {
      const side = config[key];
      return side && side.listen.port === 0 ? holdFreePortOn(side.listen, key) : undefined;
    }),
  );
  const held = picks.flatMap((pick) => (pick.status === 'fulfilled' && pick.value ? [pick.value] : []));
  const failed = picks.find((pick) => pick.status === 'rejected');
  if (failed) {
    for (const { server } of held) server.close();
    throw failed.reason;
  }
  const [inbound, outbound] = picks.map((pick) => (pick.status === 'fulfilled' ? pick.value?.port : undefined));
  return { ports: { ...(inbound !== undefined ? { inbound } : {}), ...(outbound !== undefined ? { outbound } : {}) }, held };
}

/** `listen` with the picked port in place of 0 (as it is otherwise). */
export function boundAt(listen: HostPort, port: number | undefined): HostPort {
  return port !== undefined && listen.port === 0 ? { ...listen, port } : listen;
}

