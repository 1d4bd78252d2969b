// Config mistakes as data: one issue per mistake with file, line, column and key path, a
// formatter that prints each on its own line, and the error that carries them all at once.

import { MeshcarError } from '../errors.js';

export interface ConfigIssue {
  /** The config file as the user named it, so messages point where they looked. */
  readonly file: string;
  /** 1-based; 0 when the issue is about the whole file (missing, unreadable, empty). */
  readonly line: number;
  readonly column: number;
  /** Key path such as `outbound.upstreams.payments.timeout` or `inbound.authorize[0].from[1]`; '' for the top level. */
  readonly path: string;
  readonly message: string;
  /**
   * The file could not be read because this host ran short (EMFILE at the open-files limit...):
   * nothing is wrong with the file; a reload so refused is aborted (503), not invalid (400).
   */
  readonly hostShortage?: true;
}

/** `config/orders.yaml:12:3: inbound.timeout: "15x" is not a duration (...)` */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map(formatIssue).join('\n');
}

/** File order reads best; validators find issues in the order they check keys, not as written. */
export function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}

export class ConfigError extends MeshcarError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super('config_invalid', issues.length > 0 ? formatIssues(issues) : 'the config is invalid');
    this.name = 'ConfigError';
    this.issues = Object.freeze([...issues]);
  }
}
