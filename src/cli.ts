#!/usr/bin/env -S node --max-semi-space-size=4
// meshcar's command line: argv → one command. The only module that touches process.argv,
// process.exit and exit codes; user errors print one line (what, where, how to mend), never
// a stack trace. The launcher line caps V8's young generation at 4 MB per semi-space: measured,
// it cuts a busy sidecar's peak RSS by 15-25 MB at no measurable CPU cost (`node dist/cli.js`
// users pass the flag themselves).

//
// Only the small modules every command shares are imported up front; each command imports what
// it uses when it runs (the sidecar, prom-client, node-forge, pino, yaml), so `--help`, a usage
// error or `ca token` does not pay for loading the whole sidecar.

import { parseArgs } from 'node:util';
import { MeshcarError, describeError } from './errors.js';
import { parseDuration } from './config/duration.js';
import { formatIssues, ConfigError } from './config/issues.js';
import { isValidServiceName, isValidTrustDomain } from './identity/spiffe-id.js';
import { VERSION } from './version.js';

interface Command {
  readonly usage: string;
  readonly summary: string;
  readonly options: Record<string, { type: 'string' | 'boolean'; help: string }>;
  run(values: Record<string, string | boolean | undefined>): Promise<number>;
}

function required(values: Record<string, string | boolean | undefined>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new MeshcarError('usage', `--${name} is required`);
  return value;
}

function durationOption(values: Record<string, string | boolean | undefined>, name: string, fallback: string): number {
  const text = typeof values[name] === 'string' ? (values[name] as string) : fallback;
  const ms = parseDuration(text);
  if (ms === undefined || ms < 1000) throw new MeshcarError('usage', `--${name} "${text}" is not a duration of at least 1s (write 30s, 5m, 1h or 24h)`);
  return ms;
}

function serviceOption(values: Record<string, string | boolean | undefined>): string {
  const service = required(values, 'service');
  if (!isValidServiceName(service)) throw new MeshcarError('usage', `--service "${service}" may hold only letters, digits, dots, dashes and underscores`);
  return service;
}

/** Waits for SIGINT/SIGTERM, then runs the stop function. */
function untilSignal(stop: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      stop().then(() => resolve(0), () => resolve(1));
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  });
}

/** A CA lifecycle step (src/ca/lifecycle.ts): prints what it did, and a --force warning on stderr. */
function lifecycleCommand(usage: string, summary: string, step: 'rotateIssuer' | 'rotateTokenKey' | 'rootAdd' | 'rootActivate' | 'rootRetire', forceable = false): Command {
  return {
    usage,
    summary,
    options: {
      dir: { type: 'string', help: 'the CA folder' },
      ...(forceable ? { force: { type: 'boolean' as const, help: 'go ahead although the step is refused now (prints a warning)' } } : {}),
    },
    async run(values) {
      const dir = required(values, 'dir');
      const lifecycle = await import('./ca/lifecycle.js');
      const result = await lifecycle[step](dir, { force: values.force === true });
      if (result.warning) process.stderr.write(`meshcar: warning: ${result.warning}\n`);
      process.stdout.write(`${result.summary}\n`);
      return 0;
    },
  };
}

const COMMANDS: Record<string, Command> = {
  'ca init': {
    usage: 'meshcar ca init --dir DIR --trust-domain TD [--force]',
    summary: 'create a new root and issuer CA in DIR',
    options: {
      dir: { type: 'string', help: 'folder for root.crt, root.key, issuer.crt, issuer.key, bundle.pem' },
      'trust-domain': { type: 'string', help: 'the SPIFFE trust domain, e.g. mesh.local' },
      force: { type: 'boolean', help: 'replace an existing CA (every certificate it issued stops being trusted)' },
    },
    async run(values) {
      const dir = required(values, 'dir');
      const trustDomain = required(values, 'trust-domain');
      if (!isValidTrustDomain(trustDomain)) throw new MeshcarError('usage', `--trust-domain "${trustDomain}" may hold only lower-case letters, digits, dots, dashes and underscores`);
      const { caInit } = await import('./ca/commands.js');
      await caInit(dir, trustDomain, values.force === true);
      process.stdout.write(`created CA for spiffe://${trustDomain} in ${dir} (root 10 years, issuer 1 year)\n`);
      return 0;
    },
  },
  'ca issue': {
    usage: 'meshcar ca issue --dir DIR --service NAME --out OUTDIR [--ttl 24h]',
    summary: 'issue an SVID offline: OUTDIR/svid.crt, svid.key, bundle.pem',
    options: {
      dir: { type: 'string', help: 'the CA folder' },
      service: { type: 'string', help: 'service name; the identity is spiffe://TD/svc/NAME' },
      out: { type: 'string', help: 'folder to write svid.crt (leaf + issuer), svid.key and bundle.pem to' },
      ttl: { type: 'string', help: 'certificate lifetime (default 24h)' },
    },
    async run(values) {
      const args = [required(values, 'dir'), serviceOption(values), required(values, 'out'), durationOption(values, 'ttl', '24h')] as const;
      const { caIssue } = await import('./ca/commands.js');
      const issued = await caIssue(...args);
      process.stdout.write(`issued ${issued.spiffeId} serial ${issued.serial} valid until ${issued.notAfter} into ${values.out as string}\n`);
      return 0;
    },
  },
  'ca token': {
    usage: 'meshcar ca token --dir DIR --service NAME [--ttl 1h] [--single-use] [--out FILE]',
    summary: 'print a join token for one service identity',
    options: {
      dir: { type: 'string', help: 'the CA folder' },
      service: { type: 'string', help: 'service name; the token grants spiffe://TD/svc/NAME' },
      ttl: { type: 'string', help: 'how long the token may be used (default 1h)' },
      'single-use': { type: 'boolean', help: 'the CA accepts the token once only' },
      out: { type: 'string', help: 'write the token to FILE (mode 0600) instead of printing it' },
    },
    async run(values) {
      const args = [required(values, 'dir'), serviceOption(values), durationOption(values, 'ttl', '1h'), values['single-use'] === true] as const;
      const { caToken, writeTokenFile } = await import('./ca/commands.js');
      const token = await caToken(...args);
      if (typeof values.out === 'string') {
        await writeTokenFile(values.out, token);
        const ttl = typeof values.ttl === 'string' ? values.ttl : '1h';
        process.stdout.write(`wrote a join token for service ${values.service as string} to ${values.out} (mode 0600), valid for ${ttl}${values['single-use'] === true ? ', single use' : ''}\n`);
      } else process.stdout.write(`${token}\n`);
      return 0;
    },
  },
  'ca status': {
    usage: 'meshcar ca status --dir DIR [--json]',
    summary: 'show the roots, issuers, token keys and root rotation step of the CA in DIR',
    options: {
      dir: { type: 'string', help: 'the CA folder' },
      json: { type: 'boolean', help: 'print JSON (for scripts) instead of text' },
    },
    async run(values) {
      const { caStatus, formatCaStatus } = await import('./ca/status.js');
      const status = await caStatus(required(values, 'dir'));
      process.stdout.write(values.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatCaStatus(status));
      return 0;
    },
  },
  'ca rotate-issuer': lifecycleCommand('meshcar ca rotate-issuer --dir DIR', 'a new issuer under the active root; the CA server signs with it from its next signing', 'rotateIssuer'),
  'ca rotate-token-key': lifecycleCommand('meshcar ca rotate-token-key --dir DIR', 'a new join-token signing key; tokens of the previous key keep working, older ones are refused', 'rotateTokenKey'),
  'ca root add': lifecycleCommand('meshcar ca root add --dir DIR', 'root rotation step 1: a new pending root, added to the bundle every sidecar gets', 'rootAdd'),
  'ca root activate': lifecycleCommand('meshcar ca root activate --dir DIR [--force]', 'root rotation step 2: a new issuer under the new root signs (refused until the bundle had time to spread)', 'rootActivate', true),
  'ca root retire': lifecycleCommand('meshcar ca root retire --dir DIR [--force]', 'root rotation step 3: the old root leaves the bundle (refused while its leaves can be valid)', 'rootRetire', true),
  'ca serve': {
    usage: 'meshcar ca serve --config FILE',
    summary: 'run the CA server',
    options: { config: { type: 'string', help: 'CA configuration YAML' } },
    async run(values) {
      const file = required(values, 'config');
      const [{ loadCaConfig }, { createLogger }, { caServe }] = await Promise.all([import('./config/ca-config.js'), import('./logging.js'), import('./ca/commands.js')]);
      const config = await loadCaConfig(file);
      const logger = createLogger(config.log.level, 'meshcar-ca');
      const server = await caServe(config, logger);
      // sidecars reload on SIGHUP, so habit sends it here too: say what it does instead of dying
      const onHangUp = () => logger.warn(`SIGHUP ignored: the CA server does not reload ${file}; restart it (meshcar ca serve) to apply a change`);
      process.on('SIGHUP', onHangUp);
      const status = await untilSignal(async () => {
        logger.info('draining: no new connections, requests in flight finish');
        await server.close();
        logger.info('stopped');
      });
      process.off('SIGHUP', onHangUp);
      return status;
    },
  },
  run: {
    usage: 'meshcar run --config FILE',
    summary: 'run a sidecar: identity, inbound and outbound listeners, admin (SIGHUP reloads FILE)',
    options: { config: { type: 'string', help: 'sidecar configuration YAML' } },
    async run(values) {
      const file = required(values, 'config');
      // workers > 1: each worker runs this same command line (node:cluster forks it)
      const { default: cluster } = await import('node:cluster');
      if (cluster.isWorker) return (await import('./workers/worker.js')).runWorker(file, cluster.worker?.id ?? 0);
      const [{ loadSidecarConfig }, { createLogger }, { Sidecar }, { Metrics }] = await Promise.all([import('./config/sidecar-config.js'), import('./logging.js'), import('./sidecar.js'), import('./metrics/registry.js')]);
      const config = await loadSidecarConfig(file);
      const logger = createLogger(config.log.level);
      const workers = config.workers === 1 ? undefined : await import('./workers/primary.js');
      const count = workers?.workerCount(config.workers) ?? 1;
      // one worker is today's single process: no cluster, no IPC
      const metrics = new Metrics();
      const pool = workers && count > 1 ? new workers.WorkerPool(count, logger.child({ component: 'workers' }), metrics.registry) : undefined;
      const sidecar = new Sidecar(config, logger, metrics, { configFile: file, ...(pool ? { cluster: pool } : {}) });
      // SIGHUP re-reads the config (the sidecar waits for start-up to finish, and logs the outcome)
      const onHangUp = () => void sidecar.reload().catch((err: unknown) => logger.error({ err: describeError(err) }, 'config reload failed unexpectedly; the running config is kept'));
      process.on('SIGHUP', onHangUp);
      try {
        await sidecar.start();
      } catch (err) {
        process.off('SIGHUP', onHangUp);
        // the log says why before it says stopped (stderr gets the same line from reportFailure);
        // error, not fatal: pino flushes a fatal line at once, ahead of lines still buffered
        logger.error({ code: (err as { code?: unknown }).code }, `could not start: ${describeError(err)}`);
        await sidecar.stop();
        throw err;
      }
      // the drain timeout is read when the signal comes: a reload may have changed it
      const status = await untilSignal(() => sidecar.drain());
      process.off('SIGHUP', onHangUp);
      return status;
    },
  },
  doctor: {
    usage: 'meshcar doctor --config FILE [--json]',
    summary: "check everything a sidecar's health depends on: config, identity, token, CA, upstreams, app, the running sidecar",
    options: {
      config: { type: 'string', help: 'sidecar configuration YAML' },
      json: { type: 'boolean', help: 'print JSON {ok, checks: [{name, status, message, fix}]} instead of lines' },
    },
    async run(values) {
      const file = required(values, 'config');
      const { runDoctor, formatReport, doctorFailed } = await import('./doctor/index.js');
      const results = await runDoctor(file);
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
      const { checkConfigFile } = await import('./config/load-any.js');
      const { kind, issues } = await checkConfigFile(file);
      if (issues.length > 0) {
        process.stderr.write(`${formatIssues(issues)}\n`);
        return 1;
      }
      process.stdout.write(`${file}: valid ${kind} configuration\n`);
      return 0;
    },
  },
};

function helpText(): string {
  const lines = [`meshcar ${VERSION}: a service-mesh sidecar with mutual TLS and a built-in CA`, '', 'Commands:'];
  for (const command of Object.values(COMMANDS)) lines.push(`  ${command.usage.padEnd(72)} ${command.summary}`);
  lines.push('', 'Run "meshcar <command> --help" for the options of one command.');
  return `${lines.join('\n')}\n`;
}

/** `meshcar ca`, `meshcar ca root` (and with --help): the commands of the group, each on its line. */
function groupHelp(group: string): string {
  const lines = [`meshcar ${group}: one of`, ''];
  for (const [name, command] of Object.entries(COMMANDS)) if (name.startsWith(`${group} `)) lines.push(`  ${command.usage.padEnd(72)} ${command.summary}`);
  lines.push('', `Run "meshcar ${group} <command> --help" for the options of one command.`);
  return `${lines.join('\n')}\n`;
}

function commandHelp(command: Command): string {
  const lines = [`usage: ${command.usage}`, '', command.summary, ''];
  for (const [name, option] of Object.entries(command.options)) lines.push(`  --${name.padEnd(14)} ${option.help}`);
  lines.push(`  --${'help'.padEnd(14)} show this help`);
  return `${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(helpText());
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const twoWords = `${argv[0]} ${argv[1] ?? ''}`;
  const threeWords = `${twoWords} ${argv[2] ?? ''}`;
  const name = COMMANDS[threeWords] ? threeWords : COMMANDS[twoWords] ? twoWords : argv[0] as string;
  const command = COMMANDS[name];
  // a group is a prefix of commands: `ca`, and inside it `ca root`
  const groupOf = (words: string) => (Object.keys(COMMANDS).some((key) => key.startsWith(`${words} `)) ? words : undefined);
  const group = (argv[1] === undefined ? undefined : groupOf(twoWords)) ?? groupOf(argv[0] as string);
  const next = argv[group?.split(' ').length ?? 1];
  if (!command && group && (next === undefined || next === '--help' || next === '-h' || next === 'help')) {
    process.stdout.write(groupHelp(group));
    return next === undefined ? 2 : 0;
  }
  if (!command && group) throw new MeshcarError('usage', `unknown command "${[group, next].join(' ')}"; run "meshcar ${group} --help" for the list`);
  if (!command) throw new MeshcarError('usage', `unknown command "${argv.slice(0, 2).join(' ')}"; run "meshcar --help" for the list`);
  const rest = argv.slice(name.split(' ').length);
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const [key, option] of Object.entries(command.options)) options[key] = { type: option.type };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: rest, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new MeshcarError('usage', `${describeError(err).replace(/\.$/, '')}; usage: ${command.usage}`);
  }
  if (values.help === true) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  return command.run(values);
}

function reportFailure(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  if (err instanceof MeshcarError) {
    process.stderr.write(`meshcar: ${err.message}\n`);
    return err.code === 'usage' ? 2 : 1;
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    process.stderr.write(`meshcar: cannot listen: ${describeError(err)}\n`);
    return 1;
  }
  process.stderr.write(`meshcar: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 70;
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    process.exitCode = reportFailure(err);
  },
);
