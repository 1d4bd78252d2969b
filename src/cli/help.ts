// The help texts: every command with its usage and summary (`meshcar --help`), the commands of
// one group (`meshcar ca`, `meshcar ca root`), and the options of one command (`--help`).

import { VERSION } from '../version.js';
import type { Command } from './command.js';

export function helpText(commands: Record<string, Command>): string {
  const lines = [`meshcar ${VERSION}: a service-mesh sidecar with mutual TLS and a built-in CA`, '', 'Commands:'];
  for (const command of Object.values(commands)) lines.push(`  ${command.usage.padEnd(72)} ${command.summary}`);
  lines.push('', 'Run "meshcar <command> --help" for the options of one command.');
  return `${lines.join('\n')}\n`;
}

/** `meshcar ca`, `meshcar ca root` (and with --help): the commands of the group, each on its line. */
export function groupHelp(commands: Record<string, Command>, group: string): string {
  const lines = [`meshcar ${group}: one of`, ''];
  for (const [name, command] of Object.entries(commands)) if (name.startsWith(`${group} `)) lines.push(`  ${command.usage.padEnd(72)} ${command.summary}`);
  lines.push('', `Run "meshcar ${group} <command> --help" for the options of one command.`);
  return `${lines.join('\n')}\n`;
}

export function commandHelp(command: Command): string {
  const lines = [`usage: ${command.usage}`, '', command.summary, ''];
  for (const [name, option] of Object.entries(command.options)) lines.push(`  --${name.padEnd(14)} ${option.help}`);
  lines.push(`  --${'help'.padEnd(14)} show this help`);
  return `${lines.join('\n')}\n`;
}
