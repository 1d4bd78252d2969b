// The commands about a sidecar: `run` (the sidecar itself, or a worker of it with workers > 1),
// `doctor` (everything its health depends on) and `check` (a sidecar or CA config, every
// error printed). Each loads what it needs only when it runs.

import { describeError, MeshcarError } from '../errors.js';
import { withPathHint } from '../config/config-folder.js';
import { formatIssue } from '../config/issues.js';
import { stderrLine } from './stderr-line.js';
import { type Command, durationOption, required, untilSignal } from './command.js';
import { closeLogs } from '../log-output.js';
import { StartupSignals } from './startup-signals.js';

/** doctor's --timeout at most: it answers in a minute or so, however many probes run out. */
const DOCTOR_MAX_TIMEOUT = { ms: 60_000, why: 'doctor is a quick look; a peer slower than that is down' };

/** After a drain that used its whole budget, the least time the last log lines get to be written. */
const LOG_FLUSH_MIN_MS = 500;

export const SIDECAR_COMMANDS: Record<string, Command> = {
  run: {
    usage: 'meshcar run --config FILE',
    summary: 'run a sidecar: identity, inbound and outbound listeners, admin (SIGHUP reloads FILE)',
    options: { config: { type: 'string', help: 'sidecar configuration YAML' } },
    async run(values) {
      // first of all: a signal while modules load, the config is read or the CA is waited for
      // must neither end the process (SIGHUP) nor skip the "stopped" line (SIGTERM)
      const signals = new StartupSignals();
      try {
        return await runSidecar(required(values, 'config'), signals);
      } finally {
        signals.close();
      }
    },
  },
  doctor: {
    usage: 'meshcar doctor --config FILE [--json] [--timeout DURATION]',
    summary: "check everything a sidecar's health depends on: config, identity, token, CA, upstreams, app, the running sidecar",
    options: {
      config: { type: 'string', help: 'sidecar configuration YAML' },
      json: { type: 'boolean', help: 'print JSON {ok, checks: [{name, status, message, fix, count}]} instead of lines (count: on a line that stands for several failures)' },
      timeout: { type: 'string', help: "each probe's bound: a dial, an answer, a PING (default 3s, 1s to 1m); an upstream's dial keeps to its own connectTimeout when shorter" },
    },
    async run(values) {
      const file = required(values, 'config');
      // not given: the probes' own 3 s, whose line says --timeout gives more
      const timeout = values.timeout === undefined ? {} : { timeoutMs: durationOption(values, 'timeout', '3s', DOCTOR_MAX_TIMEOUT) };
      const { runDoctor, formatReport, doctorFailed } = await import('../doctor/index.js');
      const results = await runDoctor(file, timeout);
      const failed = doctorFailed(results);
      process.stdout.write(values.json === true ? `${JSON.stringify({ ok: !failed, checks: results }, null, 2)}\n` : formatReport(results));
      return failed ? 1 : 0;
    },
  },
  check: {
    usage: 'meshcar check --config FILE',
    summary: 'validate a sidecar or CA configuration; print every error',
    options: { config: { type: 'string', help: 'configuration YAML' } },
    async run(values) {
      const file = required(values, 'config');
      const { checkConfigFile } = await import('../config/load-any.js');
      const { kind, issues, warnings } = await checkConfigFile(file);
      // a warning does not fail the check: the file runs as written
      // each line as stderrLine writes it: an issue quotes the file's values, which may hold
      // C1 controls or bidi overrides that JSON.stringify leaves as they are
      for (const warning of warnings) process.stderr.write(`meshcar: warning: ${stderrLine(warning)}\n`);
      if (issues.length > 0) {
        process.stderr.write(`${issues.map((issue) => stderrLine(formatIssue(issue))).join('\n')}\n`);
        return 1;
      }
      process.stdout.write(`${file}: valid ${kind} configuration\n`);
      return 0;
    },
  },
};

/** `meshcar run`: the sidecar (or, with workers > 1, a worker of it) until SIGTERM/SIGINT. */
async function runSidecar(file: string, signals: StartupSignals): Promise<number> {
  // workers > 1: each worker runs this same command line (node:cluster forks it)
  const { default: cluster } = await import('node:cluster');
  if (cluster.isWorker) return (await import('../workers/worker.js')).runWorker(file, cluster.worker?.id ?? 0);
  const [{ loadSidecarConfig }, { createLogger }, { Sidecar }, { Metrics }] = await Promise.all([import('../config/sidecar-config.js'), import('../logging.js'), import('../sidecar.js'), import('../metrics/registry.js')]);
  const config = await loadSidecarConfig(file);
  const logger = createLogger(config.log.level);
  const workers = config.workers === 1 ? undefined : await import('../workers/primary.js');
  const count = workers?.workerCount(config.workers) ?? 1;
  // one worker is today's single process: no cluster, no IPC
  const metrics = new Metrics();
  const pool = workers && count > 1 ? new workers.WorkerPool(count, logger.child({ component: 'workers' }), metrics.registry) : undefined;
  const sidecar = new Sidecar(config, logger, metrics, { configFile: file, ...(pool ? { cluster: pool } : {}) });
  // SIGTERM/SIGINT before or during start-up: what started stops (the start goes no further,
  // its wait for the CA ends), "stopped" is logged, exit 0, as after a drain with nothing in flight
  const stopWhileStarting = async (starting?: Promise<unknown>) => {
    logger.info('stop asked for while starting');
    // workers > 1: a worker that already listens serves while the others start (a slow or
    // replaced one can take seconds): it drains as after the start, and its requests finish
    // (they were cut: every worker was killed); the ones still starting are told to stop
    if (pool?.serving()) await sidecar.drain();
    else await sidecar.stop();
    // the start unwinds at its next step, so its last lines go out with the rest; a step that
    // never settled would not be waited for beyond the drain budget
    await Promise.race([starting?.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, config.drainTimeoutMs).unref())]);
    await closeLogs(Date.now() + LOG_FLUSH_MIN_MS);
    return 0;
  };
  if (signals.stopRequested) return stopWhileStarting();
  const starting = sidecar.start();
  // SIGHUP re-reads the config (the sidecar waits for start-up to finish, and logs the outcome);
  // after start(), so that one kept from earlier is a reload of what start() builds
  signals.reloadWith(() => void sidecar.reload().catch((err: unknown) => logger.error({ err: describeError(err) }, 'config reload failed unexpectedly; the running config is kept')));
  let stoppedFirst: boolean;
  try {
    stoppedFirst = await Promise.race([starting.then(() => false), signals.stopAsked.then(() => true)]);
  } catch (thrown) {
    // a file missing from the working directory that the config's folder holds (say where to run
    // from), or one this user may not read (say which folder keeps it out)
    const err = thrown instanceof MeshcarError ? withPathHint(thrown, file, (message) => new MeshcarError(thrown.code, message, { cause: thrown.cause })) : thrown;
    // the log says why before it says stopped (stderr gets the same line from reportFailure);
    // error, not fatal: pino flushes a fatal line at once, ahead of lines still buffered
    logger.error({ code: (err as { code?: unknown }).code }, `could not start: ${describeError(err)}`);
    await sidecar.stop();
    throw err;
  }
  if (stoppedFirst) return stopWhileStarting(starting);
  // the drain timeout is read when the signal comes: a reload may have changed it
  let logsDeadline = 0;
  const status = await untilSignal(
    () => {
      logsDeadline = Date.now() + sidecar.config.drainTimeoutMs;
      return sidecar.drain();
    },
    () => logger.warn('already draining; the signal is ignored until the drain ends'),
    // one that came as start-up finished
    () => signals.handOverStop(),
  );
  // the last log lines get what is left of the drain budget (at least LOG_FLUSH_MIN_MS): a
  // stdout nobody reads must not hold the exit back (src/cli/main.ts ends the process if it did)
  await closeLogs(Math.max(logsDeadline, Date.now() + LOG_FLUSH_MIN_MS));
  return status;
}
