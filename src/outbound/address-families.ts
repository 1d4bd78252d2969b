// Which address families this host can connect to at all, for the answers of host-name
// endpoints. A host with IPv6 disabled (Docker's default for containers, many nodes) still gets
// AAAA answers from getaddrinfo (Node's lookup passes no AI_ADDRCONFIG, and glibc ignores it for
// /etc/hosts), and a connect to them fails at once with EADDRNOTAVAIL: the error of a local
// port shortage, which is not held against the endpoint (upstream-errors.ts). Such an address
// was picked again and again (never rested, its cost stayed 0), every request paid a failed
// dial on it, one that drew three of them was answered 503, and the log blamed a shortage.
// A family counts as usable when any interface has an address of it (loopback included: the
// answer may be ::1); with no address of either family known, both are kept.

import { networkInterfaces } from 'node:os';

export type UsableFamilies = ReadonlySet<4 | 6>;

const BOTH: UsableFamilies = new Set([4, 6] as const);

/**
 * The families this host has an address of now (read at each lookup: interfaces come and go).
 * `read` is os.networkInterfaces, which throws where the interfaces cannot be listed (a sandbox
 * without netlink): then nothing is known and both are kept, or no name would ever resolve.
 */
export function usableFamilies(read: typeof networkInterfaces = networkInterfaces): UsableFamilies {
  let interfaces: ReturnType<typeof networkInterfaces>;
  try {
    interfaces = read();
  } catch {
    return BOTH;
  }
  let v4 = false;
  let v6 = false;
  for (const addresses of Object.values(interfaces)) {
    for (const a of addresses ?? []) {
      if (a.family === 'IPv4') v4 = true;
      else if (a.family === 'IPv6') v6 = true;
    }
  }
  if (v4 === v6) return BOTH;
  return new Set([v4 ? 4 : 6]);
}
