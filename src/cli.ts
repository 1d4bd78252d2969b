#!/usr/bin/env -S node --max-semi-space-size=4
// meshcar's command line: argv → one command. The only module that reads process.argv and
// sets the command's exit code (a `workers` child ends itself: src/workers/worker.ts); user
// errors print one line (what, where, how to mend), never a stack trace. The launcher line
// caps V8's young generation at 4 MB per semi-space: measured, it cuts a busy sidecar's peak
// RSS by 15-25 MB at no measurable CPU cost (`node dist/cli.js` users pass the flag themselves).
//
// The commands themselves are in src/cli/ (ca-commands.ts, sidecar-commands.ts). Only the small
// modules every command shares are imported up front; each command imports what it uses when it
// runs (the sidecar, prom-client, node-forge, pino, yaml), so `--help`, a usage error or
// `ca token` does not pay for loading the whole sidecar.

import { parseArgs } from 'node:util';
import { MeshcarError, describeError } from './errors.js';
import { ConfigError } from './config/issues.js';
import { VERSION } from './version.js';
import { CA_COMMANDS } from './cli/ca-commands.js';
import { type Command, type OptionValues, runCommand } from './cli/command.js';
import { commandHelp, groupHelp, helpText } from './cli/help.js';
import { SIDECAR_COMMANDS } from './cli/sidecar-commands.js';

/** Every command by its words, in the order `meshcar --help` lists them. */
const COMMANDS: Record<string, Command> = { ...CA_COMMANDS, ...SIDECAR_COMMANDS };

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(helpText(COMMANDS));
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
    process.stdout.write(groupHelp(COMMANDS, group));
    return next === undefined ? 2 : 0;
  }
  if (!command && group) throw new MeshcarError('usage', `unknown command "${[group, next].join(' ')}"; run "meshcar ${group} --help" for the list`);
  if (!command) throw new MeshcarError('usage', `unknown command "${argv.slice(0, 2).join(' ')}"; run "meshcar --help" for the list`);
  const rest = argv.slice(name.split(' ').length);
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const [key, option] of Object.entries(command.options)) options[key] = { type: option.type };
  let values: OptionValues;
  try {
    values = parseArgs({ args: rest, options, strict: true, allowPositionals: false }).values as OptionValues;
  } catch (err) {
    throw new MeshcarError('usage', `${describeError(err).replace(/\.$/, '')}; usage: ${command.usage}`);
  }
  if (values.help === true) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  return runCommand(command, values);
}

function reportFailure(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  if (err instanceof MeshcarError) {
    // a listener that cannot bind carries its code, as the log line does, to search for it
    process.stderr.write(`meshcar: ${err.message}${err.code === 'listen_failed' ? ' (listen_failed)' : ''}\n`);
    return err.code === 'usage' ? 2 : 1;
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    process.stderr.write(`meshcar: cannot listen: ${describeError(err)} (listen_failed)\n`);
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
