// The help texts: every command with its usage and summary (`meshcar --help`), the commands of
// one group (`meshcar ca`, `meshcar ca root`), and the options of one command (`--help`).

import { VERSION } from '../version.js';
import type { Command } from './command.js';

const USAGE_WIDTH = 72;

/** `  usage   summary`; a usage too long for its column gets the summary on the next line, in the column. */
function commandLine(command: Command): string {
  if (command.usage.length < USAGE_WIDTH) return `  ${command.usage.padEnd(USAGE_WIDTH)} ${command.summary}`;
  return `  ${command.usage}\n  ${' '.repeat(USAGE_WIDTH)} ${command.summary}`;
}

export function helpText(commands: Record<string, Command>): string {
  const lines = [`meshcar ${VERSION}: a service-mesh sidecar with mutual TLS and a built-in CA`, '', 'Commands:'];
  for (const command of Object.values(commands)) lines.push(commandLine(command));
  lines.push('', 'Run "meshcar <command> --help" for the options of one command; "meshcar --version" prints the version.');
  return `${lines.join('\n')}\n`;
}

/** `meshcar ca`, `meshcar ca root` (and with --help): the commands of the group, each on its line. */
export function groupHelp(commands: Record<string, Command>, group: string): string {
  const lines = [`meshcar ${group}: one of`, ''];
  for (const [name, command] of Object.entries(commands)) if (name.startsWith(`${group} `)) lines.push(commandLine(command));
  lines.push('', `Run "meshcar ${group} <command> --help" for the options of one command.`);
  return `${lines.join('\n')}\n`;
}

export function commandHelp(command: Command): string {
  const lines = [`usage: ${command.usage}`, '', command.summary, ''];
  for (const [name, option] of Object.entries(command.options)) lines.push(`  --${name.padEnd(14)} ${option.help}`);
  lines.push(`  --${'help'.padEnd(14)} show this help (also -h)`);
  return `${lines.join('\n')}\n`;
}
