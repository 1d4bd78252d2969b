// Test helper: the TCP connections (and files) a process holds open, read from Linux /proc as `ss -tnp`
// would, so a test can tell "the same connection" from "a new connection to the same place"
// (a gauge of open sessions reads 1 either way).

import { readdir, readFile, readlink } from 'node:fs/promises';

export interface TcpConnection {
  /** The local port: with the remote address, the connection's identity. */
  readonly localPort: number;
  readonly remotePort: number;
  /** The socket's inode, unique while it is open. */
  readonly inode: string;
}

const ESTABLISHED = '01';

/** The ESTABLISHED TCP connections process `pid` has open to `remotePort` (any loopback address). */
export async function connectionsTo(pid: number, remotePort: number): Promise<TcpConnection[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1] as string);
  }
  const found: TcpConnection[] = [];
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const [, local, remote, state] = fields;
      const inode = fields[9] as string;
      if (state !== ESTABLISHED || !inodes.has(inode)) continue;
      const port = (address: string | undefined) => parseInt(address?.split(':')[1] ?? '', 16);
      if (port(remote) !== remotePort) continue;
      found.push({ localPort: port(local), remotePort, inode });
    }
  }
  return found;
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
