// The listen ports while no worker holds them (workers > 1): the primary binds them itself,
// from the start (a port 0 picked before the first fork, shared-ports.ts) and whenever every
// worker is gone.
//
// node:cluster binds a shared listener in the primary when the first worker asks to listen and
// closes it when the last such worker is gone. Every worker dead at once (a crash, a kill, a
// crash loop whose next restart waits up to a minute) left the inbound and outbound ports
// unbound, and another local process could take one: the app's next call went to it, bearer
// token and all, and every replacement then failed to bind, for good (the workers review: a
// thief on the outbound port within 10-134 ms of the kill, while /healthz said 200).
//
// So when the last worker that asked to listen is gone, the primary binds the same addresses at
// once (in the same turn as node:cluster's close), refusing what connects meanwhile (closed
// before any byte: the caller connects again, as to a restarting process); and when a worker
// asks to listen (node:cluster's internal 'queryServer' message, watched as
// untaken-connections.ts watches 'newconn'), it lets go of that port in that same turn, before
// node:cluster's own listener binds it (at once with the scheduling policy "none", a tick later
// with round robin, whose listen looks the host up first). Two sockets, one after the other: at each
// hand-over the port is free for that moment (a scheduling slice on a busy host), and a process
// trying to bind without pause can still hit it (the test's thief, one try a millisecond, did
// in about half the runs of a kill of both workers); the minute of a crash loop and the second
// of a replacement's start are closed. Closing the moments too takes listeners the primary owns
// for its whole life, handing connections out itself, in place of node:cluster's.

import net from 'node:net';
import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Address } from './messages.js';
import type { HeldPort } from './shared-ports.js';

interface ClusterMessage {
  readonly cmd?: unknown;
  readonly act?: unknown;
  readonly port?: unknown;
}

const isQueryServer = (message: unknown): boolean =>
  typeof message === 'object' && message !== null && (message as ClusterMessage).cmd === 'NODE_CLUSTER' && (message as ClusterMessage).act === 'queryServer';

export class PortKeeper {
  /** Workers that asked node:cluster to listen and are not gone: while any is, node:cluster holds the ports. */
  private readonly binding = new Set<number>();
  /** The primary's own listeners while no worker holds the ports, each with the port it holds. */
  private held: Array<net.Server & { port: number }> = [];
  private stopped = false;

  constructor(
    private readonly logger: Logger,
    /** The addresses the workers listen on (undefined before the first one said). */
    private readonly addresses: () => readonly Address[],
  ) {}

  /** Watches `worker`'s asks to listen (call it right after cluster.fork()). */
  watch(worker: Worker): void {
    const proc = worker.process as unknown as { prependListener(event: 'internalMessage', listener: (message: unknown) => void): void };
    // before node:cluster's own listener, added at the fork: with its scheduling policy "none"
    // (NODE_CLUSTER_SCHED_POLICY) it binds in that listener, in the same turn, and met the
    // port still held (EADDRINUSE: every start with a port 0 failed)
    proc.prependListener('internalMessage', (message) => {
      if (!isQueryServer(message) || worker.isDead()) return;
      this.binding.add(worker.id);
      // the port it asks for only: a worker asks for its outbound port, and for its inbound one
      // only once that listens (26-65 ms later: released together, the inbound port was free
      // that long at each hand-over, the keeper's review)
      const port = (message as ClusterMessage).port;
      this.release(typeof port === 'number' ? port : undefined);
    });
  }

  /** `worker` is gone (its channel closed or it exited): the last one gone leaves the ports to the primary. */
  gone(worker: Worker): void {
    if (!this.binding.delete(worker.id) || this.binding.size > 0 || this.stopped) return;
    this.hold();
  }

  /** Ports the primary picked and bound before the first fork (shared-ports.ts): held until a worker asks for them, as the others are. */
  adopt(picked: readonly HeldPort[]): void {
    for (const { port, server } of picked) {
      if (this.stopped) {
        server.close();
        continue;
      }
      // an accept that fails (EMFILE) is said, and the port stays held: unheard, the second such
      // error would end the primary
      server.on('error', (err: NodeJS.ErrnoException) => this.logger.warn({ port, code: err.code }, `the primary holding port ${port} for the workers: ${err.message}`));
      this.held.push(Object.assign(server, { port }));
    }
  }

  /** The sidecar stops: the ports go with it. */
  stop(): void {
    this.stopped = true;
    this.release();
  }

  private hold(): void {
    for (const address of this.addresses()) {
      if (this.held.some((held) => held.port === address.port)) continue;
      // every connection closed unread: nothing serves it here
      const server = net.createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
      server.on('error', (err: NodeJS.ErrnoException) => {
        // EADDRINUSE: another process bound the port in the moment node:cluster had let it go;
        // the replacements cannot listen either, and say so (listen_failed)
        this.logger.error({ host: address.host, port: address.port, code: err.code }, `no worker listens and the primary could not hold ${address.host}:${address.port} meanwhile (${err.code ?? err.message}): another process may take it`);
        this.held = this.held.filter((s) => s !== (server as unknown));
      });
      // a release before the bind (its host lookup takes a turn) closes it once bound
      server.once('listening', () => {
        if (!this.held.some((held) => held === (server as unknown))) server.close();
      });
      server.listen({ host: address.host, port: address.port, exclusive: true });
      this.held.push(Object.assign(server, { port: address.port }));
    }
    if (this.held.length > 0) this.logger.warn({ ports: this.addresses() }, 'no worker listens: the primary holds the listen ports until a replacement binds them');
  }

  /** Lets go of `port` (undefined: every port). */
  private release(port?: number): void {
    const going = this.held.filter((server) => port === undefined || server.port === port);
    this.held = this.held.filter((server) => !going.includes(server));
    // net.Server.close() closes the socket at once; its callback (unused) waits for connections
    for (const server of going) if (server.listening) server.close();
  }
}
