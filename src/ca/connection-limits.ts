// The CA server's connection limits (server.ts): how long a connection may take for each step
// and stay idle, how many there may be (in all, per address), how many requests and how long
// one carries, the probes' own rate, and how long the server's own certificate lives. Tests
// pass shorter ones (CaServerOptions).

/**
 * What a connection may hold without doing anything: the CA port is reachable by every
 * workload, and each silent connection costs a file descriptor until something closes it.
 */
export const CA_CONNECTION_LIMITS = {
  /** From accept to a finished TLS handshake (Node's default is 120 s). */
  handshakeTimeoutMs: 10_000,
  /** No request in flight and no bytes either way (see idle-connections.ts). */
  idleTimeoutMs: 15_000,
  /** From a request's first byte to its last header. */
  headersTimeoutMs: 10_000,
  /** From a request's first byte to its last body byte. */
  requestTimeoutMs: 30_000,
  /**
   * On SIGTERM, how long requests in flight may take to be answered before their connections
   * are cut: a sidecar waits DEFAULT_CA_TIMEOUT_MS (10 s) for its answer, and a sign request cut
   * mid-way left a sidecar with a spent single-use token and no certificate.
   */
  drainGraceMs: 10_000,
  /** Open connections at once; more are closed as soon as they are accepted. */
  maxConnections: 1024,
  /**
   * Open connections from one remote address; more are closed as they are accepted (before
   * the TLS handshake). Sidecars open one connection per request and close it, so a host
   * needs few at once; generous enough for a whole test mesh or demo on 127.0.0.1.
   */
  maxConnectionsPerAddress: 64,
  /** Requests on one keep-alive connection; the last answer says `Connection: close`. */
  maxRequestsPerConnection: 100,
  /** Age after which a connection's next answer says `Connection: close` (and it closes). */
  maxConnectionAgeMs: 60_000,
  /**
   * /healthz and /metrics, per client address, in a bucket of their own: probes and scrapes
   * neither spend the sidecars' signing budget (rateLimit) nor go unbounded.
   */
  probeRatePerSecond: 10,
  probeBurst: 50,
  /**
   * The lifetime of the CA server's own certificate, renewed at half its life. Not bounded by
   * maxTtl, which bounds what requesters are granted (tests shorten this one instead).
   */
  serverCertificateTtlMs: 24 * 3_600_000,
} as const;

export type CaConnectionLimits = { -readonly [K in keyof typeof CA_CONNECTION_LIMITS]: number };
