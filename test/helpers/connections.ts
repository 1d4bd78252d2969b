// Test helper: the TCP connections (and files) a process holds open, read from Linux /proc as `ss -tnp`
// would, so a test can tell "the same connection" from "a new connection to the same place"
// (a gauge of open sessions reads 1 either way), and whether a server still holds a connection
// its client has stopped reading from.

import { readdir, readFile, readlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface TcpConnection {
  /** The local port: with the remote address, the connection's identity. */
  readonly localPort: number;
  readonly remotePort: number;
  /** The socket's inode, unique while it is open. */
  readonly inode: string;
}

const ESTABLISHED = '01';
const LISTEN = '0A';

interface SocketRow {
  readonly localPort: number;
  readonly remotePort: number;
  readonly state: string;
  readonly inode: string;
}

/** The TCP sockets process `pid` holds a file descriptor on (any loopback address). */
async function socketsOf(pid: number): Promise<SocketRow[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1] as string);
  }
  const rows: SocketRow[] = [];
  // the kernel writes these tables a chunk at a time while connections come and go, and may then
  // print a socket twice (seen under load: one connection listed twice): each inode counts once
  const listed = new Set<string>();
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const [, local, remote, state] = fields;
      const inode = fields[9] as string;
      if (!inodes.has(inode) || listed.has(inode)) continue;
      listed.add(inode);
      const port = (address: string | undefined) => parseInt(address?.split(':')[1] ?? '', 16);
      rows.push({ localPort: port(local), remotePort: port(remote), state: state as string, inode });
    }
  }
  return rows;
}

/** The ESTABLISHED TCP connections process `pid` has open to `remotePort` (any loopback address). */
export async function connectionsTo(pid: number, remotePort: number): Promise<TcpConnection[]> {
  return (await socketsOf(pid)).filter((row) => row.state === ESTABLISHED && row.remotePort === remotePort).map(({ localPort, inode }) => ({ localPort, remotePort, inode }));
}

/** The remote ports of the connections, in any state, a server in process `pid` still holds on its `port` (its listening socket aside). */
export async function heldConnectionsOn(pid: number, port: number): Promise<number[]> {
  return (await socketsOf(pid)).filter((row) => row.state !== LISTEN && row.localPort === port).map((row) => row.remotePort);
}

/**
 * Waits until the server in this process holds no connection on `serverPort` from `clientPort`:
 * the ms from `since`, or an Error once `boundMs` have passed.
 */
export async function serverLetGoWithin(serverPort: number, clientPort: number, since: number, boundMs: number): Promise<number | Error> {
  while (Date.now() - since < boundMs) {
    if (!(await heldConnectionsOn(process.pid, serverPort)).includes(clientPort)) return Date.now() - since;
    await sleep(250);
  }
  return new Error(`the server still holds the connection ${boundMs} ms on`);
}

/** The one connection `pid` holds to `remotePort`; throws when there are none or several. */
export async function onlyConnectionTo(pid: number, remotePort: number): Promise<TcpConnection> {
  const all = await connectionsTo(pid, remotePort);
  if (all.length !== 1) throw new Error(`expected one connection from pid ${pid} to port ${remotePort}, found ${all.length}: ${JSON.stringify(all)}`);
  return all[0] as TcpConnection;
}

/** How many file descriptors process `pid` has open on `path` right now. */
export async function openCount(pid: number, path: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === path) count++;
  }
  return count;
}

/** How many sockets (TCP, Unix, any state: one the kernel already closed still counts while its fd is open) process `pid` holds a file descriptor on. */
export async function socketFdCount(pid: number): Promise<number> {
  let count = 0;
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')).startsWith('socket:')) count++;
  }
  return count;
}
