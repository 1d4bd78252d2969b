// What a Sidecar (sidecar.ts) is given besides its config, and the addresses it reports once
// ready. With workers > 1 the options say which process this is: the primary (given the
// cluster) or a worker (given what the primary hands over). Types only; sidecar.ts re-exports them.

import type { RunningIdentity } from './identity/bootstrap.js';
import type { WorkerCluster } from './workers/contract.js';
import type { SpecDocuments } from './schema/guards.js';
import type { ListenPorts } from './workers/shared-ports.js';

export interface SidecarAddresses {
  /** Absent in a worker (workers > 1): the primary serves the admin port. */
  readonly admin?: { host: string; port: number };
  readonly inbound?: { host: string; port: number };
  readonly outbound?: { host: string; port: number };
}

export interface SidecarOptions {
  /** The config file as the user named it. */
  readonly configFile?: string;
  /** workers > 1, in the primary: the workers carry the traffic; this process keeps identity and admin. */
  readonly cluster?: WorkerCluster;
  /** workers > 1, in a worker: the identity the primary hands over; no admin port here. */
  readonly identity?: () => Promise<RunningIdentity>;
  /** workers > 1, in a worker: the OpenAPI documents the primary loaded (a worker reads no spec file). */
  readonly specs?: SpecDocuments;
  /** workers > 1, in a worker: how many workers share the app (its connection limit is split among them). */
  readonly workers?: number;
  /** workers > 1, in a worker: where the config says listen port 0, the port the primary picked for every worker (workers/shared-ports.ts). */
  readonly listenPorts?: ListenPorts;
}
