// Connections node:cluster handed to a worker that the worker never took (workers > 1): closed
// when that worker exits, so no caller waits on them for ever.
//
// The primary accepts every connection and hands it to the workers in turn (round robin:
// node:cluster's RoundRobinHandle). It sends the socket over the IPC channel ('newconn') and
// keeps its own copy open until the worker answers that it took it; only then does it close its
// copy and hand that worker the next one. A worker that dies, or is stopped and then killed by
// the health checks, before it answers never answers: Node keeps the primary's copy open for the
// process's life. Probe, a real sidecar: one worker stopped (SIGSTOP), four TLS connections;
// three were served by the other worker, the fourth, handed to the stopped one, stayed open with
// nobody reading it long after the worker had been replaced (a caller without its own timeout
// hangs for good) and held a descriptor in the primary.
//
// Node offers no hook for this: the worker's send of a 'newconn' message is watched (its
// sequence number and the socket handle), the worker's acknowledgement (an internal message
// with that number as `ack`) forgets it, and what is left at the worker's exit is closed. The
// caller sees its connection closed before the TLS handshake, and connects again.

import type { Worker } from 'node:cluster';

interface ClusterMessage {
  readonly cmd?: unknown;
  readonly act?: unknown;
  readonly seq?: unknown;
  readonly ack?: unknown;
}

interface Handle {
  close(): void;
}

type Send = (message: unknown, handle?: unknown, ...rest: unknown[]) => boolean;

const isCluster = (message: unknown): message is ClusterMessage => typeof message === 'object' && message !== null && (message as ClusterMessage).cmd === 'NODE_CLUSTER';

/** Watches the connections handed to `worker` (call it right after cluster.fork()). */
export function closeUntakenConnections(worker: Worker): void {
  const proc = worker.process as unknown as { send: Send; on(event: 'internalMessage', listener: (message: unknown) => void): void };
  /** Handed over and not acknowledged yet, by the message's sequence number. */
  const untaken = new Map<number, Handle>();
  const send = proc.send.bind(proc);
  proc.send = (message, handle, ...rest) => {
    if (isCluster(message) && message.act === 'newconn' && typeof message.seq === 'number' && typeof (handle as Handle | undefined)?.close === 'function') untaken.set(message.seq, handle as Handle);
    return send(message, handle, ...rest);
  };
  // taken (the primary closes its copy) or refused (it goes to another worker, under a new number)
  proc.on('internalMessage', (message) => {
    if (isCluster(message) && typeof message.ack === 'number') untaken.delete(message.ack);
  });
  worker.once('exit', () => {
    // closing a handle that is closed already does nothing
    for (const handle of untaken.values()) handle.close();
    untaken.clear();
  });
}
