// The `meshcar ca` commands: create a CA, issue SVIDs and join tokens offline, show its state,
// rotate its issuer, token key and root, and run the CA server. Each loads the CA code
// (node-forge among it) only when it runs.

import { dirname } from 'node:path';
import { MeshcarError } from '../errors.js';
import { trustDomainProblem } from '../identity/spiffe-id.js';
import { clip } from '../clip.js';
import { type Command, durationOption, QUOTED_MAX, required, serviceOption, untilSignal } from './command.js';
import { DAY_MS } from '../config/duration.js';
import { StartupSignals } from './startup-signals.js';
import { stderrLine } from './stderr-line.js';
import { withFolderToRunFrom } from '../config/config-folder.js';
import { caInitFix } from '../config/ca-init-fix.js';

/** `ca issue --ttl`: an issuer lives a year (ca init, rotate-issuer) and a leaf never outlives it. */
const MAX_LEAF_TTL = { ms: 366 * DAY_MS, why: 'a leaf never outlives its issuer, which lives a year' };
/** `ca token --ttl`: a join token is for first contact; a month covers any rollout, and a leaked one stops working. */
const MAX_TOKEN_TTL = { ms: 30 * DAY_MS, why: 'a join token is for first contact; make a new one when it runs out' };

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
      const lifecycle = await import('../ca/lifecycle.js');
      const result = await lifecycle[step](dir, { force: values.force === true });
      if (result.warning) process.stderr.write(`meshcar: warning: ${stderrLine(result.warning)}\n`);
      process.stdout.write(`${result.summary}\n`);
      return 0;
    },
  };
}

export const CA_COMMANDS: Record<string, Command> = {
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
      const problem = trustDomainProblem(trustDomain);
      if (problem !== undefined) throw new MeshcarError('usage', `--trust-domain ${JSON.stringify(clip(trustDomain, QUOTED_MAX))} is not a trust domain: ${problem}`);
      const { caInit } = await import('../ca/commands.js');
      const { finished } = await caInit(dir, trustDomain, values.force === true);
      if (finished) process.stdout.write(`${dir} held an init that did not finish; its keys were never used and are replaced\n`);
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
      const args = [required(values, 'dir'), serviceOption(values), required(values, 'out'), durationOption(values, 'ttl', '24h', MAX_LEAF_TTL)] as const;
      const [{ caIssue }, { refuseOutInCaFolder }] = await Promise.all([import('../ca/commands.js'), import('../ca/out-path.js')]);
      refuseOutInCaFolder(args[2], args[2], 'svid.crt, svid.key and bundle.pem');
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
      const args = [required(values, 'dir'), serviceOption(values), durationOption(values, 'ttl', '1h', MAX_TOKEN_TTL), values['single-use'] === true] as const;
      // given, it is a path: an empty one is a usage error (exit 2), as for ca issue
      const out = values.out === undefined ? undefined : required(values, 'out');
      const [{ caToken, writeTokenFile }, { prepareOutFile }, { refuseOutInCaFolder, judgeTokenFolder }] = await Promise.all([import('../ca/commands.js'), import('../user-paths.js'), import('../ca/out-path.js')]);
      // before the token is made: a token printed nowhere is a token wasted (and one more to revoke)
      if (out !== undefined) {
        refuseOutInCaFolder(out, dirname(out), 'the token');
        await prepareOutFile(out);
        await judgeTokenFolder(out);
      }
      const token = await caToken(...args);
      if (out !== undefined) {
        await writeTokenFile(out, token);
        const ttl = typeof values.ttl === 'string' ? values.ttl : '1h';
        process.stdout.write(`wrote a join token for service ${values.service as string} to ${out} (mode 0600), valid for ${ttl}${values['single-use'] === true ? ', single use' : ''}\n`);
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
      const { caStatus, formatCaStatus } = await import('../ca/status.js');
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
      // from the first moment, as `meshcar run` does: a SIGHUP while modules load or the config
      // is read ended the process (exit 129), a SIGTERM exited 143 with no line; now the one is
      // told once the log is open, and the other stops the server as soon as it is up
      const signals = new StartupSignals();
      try {
        return await serveCa(file, signals);
      } finally {
        signals.close();
      }
    },
  },
};

/** `meshcar ca serve`: the CA server until SIGTERM/SIGINT; SIGHUP is ignored, with a warning. */
async function serveCa(file: string, signals: StartupSignals): Promise<number> {
  const [{ loadCaConfig }, { createLogger }, { caServe }] = await Promise.all([import('../config/ca-config.js'), import('../logging.js'), import('../ca/commands.js')]);
  const config = await loadCaConfig(file);
  const logger = createLogger(config.log.level, 'meshcar-ca');
  // sidecars reload on SIGHUP, so habit sends it here too: say what it does instead of dying
  // (from before the server starts: its 'listening' line may be read before caServe returns)
  signals.reloadWith(() => logger.warn(`SIGHUP ignored: the CA server does not reload ${file}; restart it (meshcar ca serve) to apply a change`));
  if (signals.stopRequested) {
    logger.info('stopped (asked to stop while starting)');
    return 0;
  }
  // a CA folder missing from the working directory, that the config's folder (or one above)
  // holds; or nowhere: the init that makes it, for this config's trust domain
  const server = await caServe(config, logger).catch((err: unknown) => {
    throw withFolderToRunFrom(err, file, { path: config.dir, fix: caInitFix(config.dir, config.trustDomain) });
  });
  // a SIGTERM that came while it started stops it now (untilSignal runs the stop at once)
  return untilSignal(
    async () => {
      logger.info('draining: no new connections, requests in flight finish');
      await server.close();
      logger.info('stopped');
    },
    undefined,
    () => signals.handOverStop(),
  );
}
