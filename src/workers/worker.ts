// A worker process (workers > 1): the same inbound and outbound listeners as a one-process
// sidecar (node:cluster shares the listening sockets), with the identity the primary hands
// over, and the config the primary checked (a worker never reads the config file or a spec:
// what it runs is what the primary holds, generation by generation). It takes no signals
// itself: the primary tells it to prepare and commit a reload, or to drain (a worker whose
// primary is gone exits at once: node:cluster does that on an unexpected disconnect; one told
// to drain before it got its config exits without starting). It starts on the latest SVID the
// primary sent. Its metrics are exported for the primary's aggregation.

import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { createLogger } from '../logging.js';
import { describeError } from '../errors.js';
import { expiredAtMs, validateSvid, type Svid, type SvidMaterial } from '../identity/svid.js';
import { WorkloadIdentity } from '../identity/workload-identity.js';
import type { RunningIdentity } from '../identity/bootstrap.js';
import { Metrics } from '../metrics/registry.js';
import { Sidecar } from '../sidecar.js';
import { exportForAggregation } from './cluster-metrics.js';
import { isToWorker, workersAround, type Answers, type Ask, type ToPrimary, type ToWorker, type WorkerConfig } from './messages.js';
import { ReloadSteps } from './reload-steps.js';
import type { ListenPorts } from './shared-ports.js';

/** Resolves once the message is handed to the channel (so a last message is not lost at exit). */
function send(message: ToPrimary): Promise<void> {
  return new Promise((resolve) => {
    if (process.send) process.send(message, undefined, {}, () => resolve());
    else resolve();
  });
}

/**
 * The SVID the primary hands over, checked as any SVID is, but as of its last valid second
 * once it has expired: the primary keeps serving an expired one while its renewal retries (the
 * CA away; /ready says expired), and a worker restarted meanwhile refusing it exited at once,
 * again and again, into the crash-loop wait: the pod stayed unready for up to a minute after
 * the renewal had landed. It is what every other worker serves; the next one replaces it.
 * Expired means its leaf or any certificate of its path (an intermediate of identity.files may
 * end first): each refusal names the end of the one that expired, and the set is judged again
 * a second before it, once per certificate at most.
 */
export function checkFromPrimary(material: SvidMaterial, spiffeId: string, now: number = Date.now()): Svid {
  let at = now;
  for (let turn = 0; ; turn++) {
    try {
      return validateSvid(material, spiffeId, new Date(at));
    } catch (err) {
      const ended = expiredAtMs(err);
      // each turn goes back before an earlier end: a path is at most a leaf, 4 signers and a root
      if (ended === undefined || ended > at || turn > 6) throw err;
      // a second before its end (OpenSSL's dates are in whole seconds): every other check still applies
      at = ended - 1000;
    }
  }
}

/** Runs until drained; resolves with the exit status, and lets the process end. */
export async function runWorker(file: string, workerId: number): Promise<number> {
  const status = await serve(file, workerId);
  // the IPC channel keeps a worker alive: close it as a planned disconnect (an unplanned one
  // makes node:cluster exit 0 at once, whatever the status); a stray timer gets 2 s
  setTimeout(() => process.exit(status), 2000).unref();
  if (cluster.worker?.isConnected()) cluster.worker.disconnect();
  return status;
}

async function serve(file: string, workerId: number): Promise<number> {
  // a terminal's Ctrl-C or a group kill reaches every process: only the primary decides
  const ignore = () => undefined;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, ignore);
  let sidecar: Sidecar | undefined;
  let built: (built: { sidecar: Sidecar; started: Promise<unknown> }) => void = ignore;
  // an ask or a drain that comes while the worker starts waits for the sidecar
  const constructed = new Promise<{ sidecar: Sidecar; started: Promise<unknown> }>((resolve) => (built = resolve));
  let identity: WorkloadIdentity | undefined;
  let logger: Logger | undefined;
  // every SVID that comes before the identity is built is kept, the latest wins: a rotation
  // between the hello and the build must not leave this worker on the old certificate
  let latestSvid: SvidMaterial | undefined;
  let firstSvid: (() => void) | undefined;
  const svids = new Promise<void>((resolve) => (firstSvid = resolve));
  let firstConfig: ((current: WorkerConfig | undefined) => void) | undefined;
  // undefined: told to drain before it had a config (the primary is stopping): nothing to start
  const configs = new Promise<WorkerConfig | undefined>((resolve) => (firstConfig = resolve));
  // where the config says listen port 0, the port the primary picked for every worker
  let listenPorts: ListenPorts = {};
  let configured = false;
  const steps = new ReloadSteps(constructed.then(({ sidecar: s }) => s));
  let done: (status: number) => void = ignore;
  const finished = new Promise<number>((resolve) => (done = resolve));
  let draining: Promise<void> | undefined;
  const drain = (timeoutMs: number) => {
    // a start under way finishes first, so the listeners it opens are drained too
    draining ??= constructed.then(({ sidecar: s, started }) => started.catch(ignore).then(() => s.drain(timeoutMs))).then(() => done(0), () => done(1));
    return draining;
  };

  // before its identity is built, a worker's bundle root count is prom-client's 0, not a count
  const metricsToHand = async () => {
    const families = await metrics.registry.getMetricsAsJSON();
    return metrics.identityShown ? families : families.filter((family) => family.name !== 'meshcar_identity_bundle_roots');
  };

  const answer = async (ask: Ask): Promise<Answers[keyof Answers]> => {
    // answered from the first moment: a scrape does not wait for a worker that is starting
    if (ask.ask === 'metrics') return metricsToHand();
    if (ask.ask === 'ping') return true;
    const { sidecar: current } = await constructed;
    if (ask.ask === 'prepare' || ask.ask === 'commit') return steps.run(ask);
    if (ask.ask === 'endpoints') return { endpoints: current.traffic.endpoints(), discovery: current.traffic.discoveryRows() };
    if (ask.ask === 'tls') return current.tlsFailures.recent();
    if (ask.ask === 'upstreams') return current.upstreams();
    // counted apart from meshcar_requests_total, which metrics.requests: false leaves empty
    return { pid: process.pid, serial: identity?.current().serialHex ?? null, requests: current.finishedRequests, generation: steps.generation };
  };

  const onMessage = (message: ToWorker) => {
    if (message.type === 'meshcar:svid') {
      if (!identity) {
        latestSvid = message.svid;
        return firstSvid?.();
      }
      try {
        identity.swap(checkFromPrimary(message.svid, identity.spiffeId));
      } catch (err) {
        logger?.error({ err: describeError(err) }, 'the SVID from the primary was refused; the current one is kept');
      }
    } else if (message.type === 'meshcar:drain') {
      if (!configured) {
        // nothing listens yet and nothing will: the primary stops
        firstConfig?.(undefined);
        done(0);
        return;
      }
      void drain(message.timeoutMs);
    } else if (message.type === 'meshcar:config') {
      configured = true;
      listenPorts = message.ports;
      firstConfig?.(message.current);
    } else if (message.type === 'meshcar:abort') {
      steps.abort(message.generation);
    } else {
      const { id } = message;
      answer(message).then(
        async (result) => {
          await send({ type: 'meshcar:answer', id, answer: result });
          // logged once the answer is on its way: from here the primary hears it even if this process stops
          if (message.ask === 'prepare') logger?.info({ component: 'reload', generation: message.next.generation }, `config generation ${message.next.generation} prepared; waiting for the primary to commit it`);
        },
        (err: unknown) => void send({ type: 'meshcar:answer', id, error: describeError(err) }),
      );
    }
  };
  process.on('message', (message: unknown) => {
    if (isToWorker(message)) onMessage(message);
  });
  const metrics = new Metrics();
  exportForAggregation(metrics.registry);
  void send({ type: 'meshcar:hello' });

  try {
    const current = await configs;
    if (!current) return await finished;
    steps.started(current.generation);
    const { config } = current;
    logger = createLogger(config.log.level).child({ worker: workerId });
    const fromPrimary = async (): Promise<RunningIdentity> => {
      await svids;
      // read after the wait, in the same turn as the build: nothing newer can slip in between
      identity = new WorkloadIdentity(checkFromPrimary(latestSvid as SvidMaterial, config.spiffeId), (logger as Logger).child({ component: 'identity' }));
      return { identity, nextRenewalAt: () => undefined, stop: ignore };
    };
    sidecar = new Sidecar(config, logger, metrics, { configFile: file, identity: fromPrimary, specs: current.specs, workers: workersAround(), listenPorts });
    const started = sidecar.start();
    built({ sidecar, started });
    const addresses = await started;
    void send({ type: 'meshcar:listening', ...(addresses.inbound ? { inbound: addresses.inbound } : {}), ...(addresses.outbound ? { outbound: addresses.outbound } : {}) });
  } catch (err) {
    await send({ type: 'meshcar:failed', message: describeError(err), ...(typeof (err as { code?: unknown }).code === 'string' ? { code: (err as { code: string }).code } : {}) });
    await sidecar?.stop().catch(ignore);
    return 1;
  }
  return finished;
}
