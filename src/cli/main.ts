// meshcar's command line: argv → one command, loaded by src/cli.ts once it holds the signals. The
// only module that sets the command's exit code (a `workers` child ends itself:
// src/workers/worker.ts); user errors print one line (what, where, how to mend), never a stack
// trace. The launcher line (its flags: src/cli.ts) is on the entry.
//
// The commands themselves are in src/cli/ (ca-commands.ts, sidecar-commands.ts). Only the small
// modules every command shares are imported up front; each command imports what it uses when it
// runs (the sidecar, prom-client, node-forge, pino, yaml), so `--help`, a usage error or
// `ca token` does not pay for loading the whole sidecar.

import { parseArgs } from 'node:util';
import { MeshcarError, describeError } from '../errors.js';
import { ConfigError, formatIssue } from '../config/issues.js';
import { toldIssues } from '../reload-outcome.js';
import { pathProblem } from '../user-paths.js';
import { VERSION } from '../version.js';
import { closeLogs } from '../log-output.js';
import { CA_COMMANDS } from './ca-commands.js';
import { type Command, type OptionValues, QUOTED_MAX, runCommand } from './command.js';
import { clip } from '../clip.js';
import { suggestKey } from '../config/key-suggestion.js';
import { commandHelp, groupHelp, helpText } from './help.js';
import { SIDECAR_COMMANDS } from './sidecar-commands.js';
import { exitStatus, watchOutput } from './output-errors.js';
import { stderrLine } from './stderr-line.js';
import { localShortage } from '../local-shortage.js';

/** Every command by its words, in the order `meshcar --help` lists them. */
const COMMANDS: Record<string, Command> = { ...CA_COMMANDS, ...SIDECAR_COMMANDS };

const HELP_WORDS = ['--help', '-h', 'help'];

/**
 * What a person may type alone for one of `commands`, each with what it stands for: a command's
 * words, and the last word of a command or of a group (`token` for `ca token`, `root` for the
 * group `ca root`). A typo is matched against all of them at once, so `roo` finds `ca root` (one
 * edit) rather than `run` (two), and `issu` finds `ca issue`.
 */
function typedForms(commands: readonly string[], fromWord: number): ReadonlyMap<string, string> {
  const forms = new Map<string, string>(commands.map((key) => [key, key]));
  for (const key of commands) {
    const words = key.split(' ');
    for (let end = fromWord; end <= words.length; end++) {
      const last = words[end - 1] as string;
      if (!forms.has(last)) forms.set(last, words.slice(0, end).join(' '));
    }
  }
  return forms;
}

// from the second word: `ca` alone, two letters, was the guess for any short word (`-c`, `ls`: a re-review)
const TYPED_FORMS = typedForms(['--version', ...Object.keys(COMMANDS)], 2);

/** The likely spelling of `typed` among `forms`, as what it stands for. */
const likely = (typed: string, forms: ReadonlyMap<string, string>): string | undefined => forms.get(suggestKey(typed, [...forms.keys()]) ?? '');

export async function main(args: string[]): Promise<number> {
  // `help ca`, `help check`: the help of what follows, as `ca --help` and `check --help` show it
  const argv = args.length > 1 && HELP_WORDS.includes(args[0] as string) ? [...args.slice(1), '--help'] : args;
  if (argv.length === 0 || HELP_WORDS.includes(argv[0] as string)) {
    process.stdout.write(helpText(COMMANDS));
    return argv.length === 0 ? 2 : 0;
  }
  // `help --version` (and `--version --help`): the help, which says what --version does
  if (argv[0] === '--version' && argv.length === 2 && HELP_WORDS.includes(argv[1] as string)) {
    process.stdout.write(helpText(COMMANDS));
    return 0;
  }
  if (argv[0] === '--version') {
    if (argv.length > 1) throw new MeshcarError('usage', `--version takes no arguments, got "${clip(argv[1] as string, QUOTED_MAX)}"; usage: meshcar --version`);
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
  // what was typed is quoted cut short: one line, whatever a script passed
  // a typo gets its likely command (within two edits), as an unknown config key gets its key
  const typed = command ? '' : group ? [group, next].join(' ') : words(argv).join(' ');
  // -v and -V, the version flag of many tools, are too short for the edit distance to find
  const near = command
    ? undefined
    : !group && (typed === '-v' || typed === '-V')
      ? '--version'
      : // `meshcar token` for `meshcar ca token`: a command's last word typed alone (or near it);
        // `meshcar root` for the group `ca root`
        group
        ? inGroup(group, next ?? '')
        : likely(typed, TYPED_FORMS);
  const guess = near === undefined ? '' : ` (did you mean "${near}"?)`;
  if (!command && group) throw new MeshcarError('usage', `unknown command "${clip(typed, QUOTED_MAX)}"${guess}; run "meshcar ${group} --help" for the list`);
  if (!command) throw new MeshcarError('usage', `unknown command "${clip(typed, QUOTED_MAX)}"${guess}; run "meshcar --help" for the list`);
  const rest = argv.slice(name.split(' ').length);
  // -h as well: `meshcar -h` and `meshcar ca -h` take it, so `meshcar run -h` must too
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [key, option] of Object.entries(command.options)) options[key] = { type: option.type };
  const values = parseOptions(command, rest, options);
  if (values.help === true) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  return runCommand(command, values);
}

/** The command words typed (up to two), without the options after them. */
function words(argv: string[]): string[] {
  const end = argv.findIndex((word) => word.startsWith('-'));
  return argv.slice(0, Math.min(2, end === -1 ? argv.length : Math.max(end, 1)));
}

/** The command's options, or one usage line: parseArgs' own errors span lines, and it keeps the last of a repeated option. */
function parseOptions(command: Command, rest: string[], options: Record<string, { type: 'string' | 'boolean'; short?: string }>): OptionValues {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options; strict: true; allowPositionals: false; tokens: true }>>;
  try {
    parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: false, tokens: true });
  } catch (err) {
    const text = describeError(err);
    const ambiguous = /^Option '(--[\w-]+)[^']*' argument is ambiguous/.exec(text);
    const missing = /^Option '(--[\w-]+) <value>' argument missing/.exec(text);
    // `--json=yes`: parseArgs' own words quote the option, capitalised, unlike every other line
    const flagValue = /^Option '(--[\w-]+)' does not take an argument/.exec(text);
    const unknown = /^Unknown option '--([^']*)'/.exec(text);
    // an Envoy user's `-c FILE`, or the file alone: the config goes after --config
    const short = /^Unknown option '-c'/.test(text) && 'config' in options ? 'config' : undefined;
    const file = /^Unexpected argument '([^']*\.(?:ya?ml|json))'/i.exec(text)?.[1];
    const near = unknown ? suggestKey(unknown[1] as string, Object.keys(options)) : short ?? (file !== undefined && 'config' in options ? `config ${clip(file, QUOTED_MAX)}` : undefined);
    const message = ambiguous
      ? `${ambiguous[1]} needs a value, but the option "${rest[rest.indexOf(ambiguous[1] as string) + 1]}" follows it (write ${ambiguous[1]}=-VALUE for a value that starts with -)`
      : missing
        ? `${missing[1]} needs a value`
        : flagValue
          ? `${flagValue[1]} takes no value: write ${flagValue[1]} alone`
          : clipQuoted(text.split('\n')[0]?.replace(/\.$/, '') ?? '') + (near === undefined ? '' : ` (did you mean --${near}?)`);
    throw new MeshcarError('usage', `${message}; usage: ${command.usage}`);
  }
  // a second --config would silently win over the first: which file did the user mean?
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new MeshcarError('usage', `--${token.name} is given more than once; give it once; usage: ${command.usage}`);
    seen.add(token.name);
    // a path the kernel refuses to look at (ENAMETOOLONG) was quoted whole by the error that
    // followed, up to three times: a 100 KB --config made a 200-300 KB error line
    const bytes = PATH_OPTIONS.has(token.name) && typeof token.value === 'string' ? Buffer.byteLength(token.value) : 0;
    if (bytes > MAX_PATH_BYTES) throw new MeshcarError('usage', `--${token.name} is ${bytes} bytes long (${JSON.stringify(clip(token.value as string, QUOTED_MAX))}): a path holds at most ${MAX_PATH_BYTES}; give a shorter one`);
  }
  return parsed.values as OptionValues;
}

/** The options that name a file or folder. */
const PATH_OPTIONS = new Set(['config', 'dir', 'out']);
/** Linux's PATH_MAX (4096) holds the terminating NUL. */
const MAX_PATH_BYTES = 4095;

/** parseArgs' message with the option or argument it quotes ('--xxx…') cut short. */
function clipQuoted(text: string): string {
  return text.replace(/'([^']*)'/g, (_, quoted: string) => `'${clip(quoted, QUOTED_MAX)}'`);
}

function reportFailure(err: unknown): number {
  if (err instanceof ConfigError) {
    // the first issues and a count of the rest, as a refused reload logs them: a config of
    // 60,000 unknown keys wrote 10 MB to stderr; `meshcar check` prints them all
    const file = err.issues[0]?.file;
    process.stderr.write(`${file === undefined ? stderrLine(err.message) : toldIssues(err.issues.map((issue) => stderrLine(formatIssue(issue))), file).join('\n')}\n`);
    return 1;
  }
  if (err instanceof MeshcarError) {
    // a listener that cannot bind carries its code, as the log line does, to search for it
    process.stderr.write(`meshcar: ${stderrLine(err.message)}${err.code === 'listen_failed' ? ' (listen_failed)' : ''}\n`);
    return err.code === 'usage' ? 2 : 1;
  }
  // a file-system error names its path (a listen error does not): one line, not a stack trace
  const pathError = pathProblem(err);
  if (pathError) {
    process.stderr.write(`meshcar: ${stderrLine(pathError.message)}\n`);
    return 1;
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    process.stderr.write(`meshcar: cannot listen: ${stderrLine(describeError(err))} (listen_failed)\n`);
    return 1;
  }
  const shortage = localShortage(code);
  if (shortage !== undefined) {
    // a low open-files limit (a container's nofile) is the host's, not a bug: what to raise
    process.stderr.write(`meshcar: ${shortage} (${code}): ${stderrLine(describeError(err))}; raise the open-files limit (ulimit -n, a container's nofile): a sidecar takes about 50 descriptors to start and one more per connection it holds (callers, the app, upstreams)\n`);
    return 1;
  }
  process.stderr.write(`meshcar: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 70;
}

/** The longest the last log lines may take once a command is done (`run` bounds its own by the drain budget first). */
const LOG_FLUSH_MS = 1000;

// before anything is written: a stdout that refuses the output is one line, not a stack trace
watchOutput();
main(process.argv.slice(2))
  .then(
    (status) => {
      process.exitCode = exitStatus(status);
    },
    (err: unknown) => {
      process.exitCode = exitStatus(reportFailure(err));
    },
  )
  .then(async () => {
    // a stdout that never takes the last lines (a pipe nobody reads) would keep the process
    // alive for ever (a write retried, a write pending): they are dropped and the process ends
    if (!(await closeLogs(Date.now() + LOG_FLUSH_MS))) process.exit();
  });

/** The command of `group` nearest to `word` typed after it, compared without the group's own words (`ca x` shared "ca " with every ca command: a review). */
function inGroup(group: string, word: string): string | undefined {
  const rest = Object.keys(COMMANDS)
    .filter((key) => key.startsWith(`${group} `))
    .map((key) => key.slice(group.length + 1));
  // a group's own word too: `ca roo` for `ca root` (a re-review)
  const near = likely(word, typedForms(rest, 1));
  return near === undefined ? undefined : `${group} ${near}`;
}
