// Before the demo writes or starts anything: is one of its ports already answering? A second
// `make demo` beside a running one used to overwrite the running demo's join tokens and config
// copies, then fail on whichever port its own processes lost first, named without what holds it
// ("listen EADDRINUSE ... 127.0.0.1:18080"). Asked first, each port answers for itself, and a
// running demo is recognised by its CA: a TLS server on the CA port whose certificate chains to
// this folder's demo CA. The later EADDRINUSE checks stay for a port taken in between.

import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { DemoPorts } from './ports.js';

const PORT_NAMES: { readonly [K in keyof DemoPorts]: string } = {
  ordersAdmin: "the orders sidecar's admin port",
  frontendOutbound: "the frontend sidecar's outbound port",
  frontendAdmin: "the frontend sidecar's admin port",
  ordersInbound: "the orders sidecar's inbound port",
  frontendInbound: "the frontend sidecar's inbound port",
  ordersApp: "the orders app's port",
  frontendApp: "the frontend app's port",
  ca: "the demo CA's port",
};
/** Loopback answers at once; a port that has not accepted by then is not listening for us. */
const CONNECT_MS = 1000;

/** Whether something accepts a TCP connection on 127.0.0.1:`port`. */
function answers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => finish(false), CONNECT_MS);
    const finish = (up: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      done(up);
    };
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** Whether the TLS server on `port` presents a certificate from the CA of `bundlePem`. */
function isOurCa(port: number, bundlePem: string): Promise<boolean> {
  return new Promise((done) => {
    // the chain is the question, not the names: checkServerIdentity accepts any
    const socket = tls.connect({ host: '127.0.0.1', port, ca: bundlePem, checkServerIdentity: () => undefined }, () => finish(socket.authorized));
    const timer = setTimeout(() => finish(false), CONNECT_MS);
    const finish = (ours: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      done(ours);
    };
    socket.once('error', () => finish(false));
  });
}

/**
 * Throws one sentence naming the first demo port that answers (and whether it is another demo
 * of this folder); resolves when none does. `bundleFile`: this folder's demo CA bundle, if any.
 */
export async function refuseTakenPorts(ports: DemoPorts, bundleFile: string): Promise<void> {
  const names = Object.keys(PORT_NAMES) as Array<keyof DemoPorts>;
  // all at once: eight loopback connects take a millisecond, a refused one no longer
  const found = await Promise.all(names.map((name) => answers(ports[name])));
  const held = names.filter((_name, i) => found[i]);
  if (held.length === 0) return;
  const bundle = await readFile(bundleFile, 'utf8').catch(() => undefined);
  if (held.includes('ca') && bundle !== undefined && (await isOurCa(ports.ca, bundle))) {
    throw new Error(`another demo is running here (its CA answers on 127.0.0.1:${ports.ca} with this folder's CA): wait for it to end or stop it (Ctrl-C where it runs)`);
  }
  const first = held[0] as keyof DemoPorts;
  const more = held.length > 1 ? ` (and ${held.length - 1} more of its ports: ${held.slice(1).map((n) => ports[n]).join(', ')})` : '';
  throw new Error(`127.0.0.1:${ports[first]} (${PORT_NAMES[first]}) is taken by another process${more}`);
}
