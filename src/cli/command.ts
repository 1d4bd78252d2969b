// What every meshcar command shares: the shape of a command (usage, options, run), reading its
// options into values or one usage error that names the option, and waiting for the signal that
// stops a server. A command's run() resolves to the exit status; src/cli/main.ts sets it.

import { constants as osConstants } from 'node:os';
import { MeshcarError } from '../errors.js';
import { formatDuration, parseDuration } from '../config/duration.js';
import { serviceNameProblem } from '../identity/spiffe-id.js';
import { clip } from '../clip.js';

/** The most of an option's value an error message quotes. */
export const QUOTED_MAX = 200;

/** The values parseArgs read for a command, by option name. */
export type OptionValues = Record<string, string | boolean | undefined>;

export interface Command {
  readonly usage: string;
  readonly summary: string;
  readonly options: Record<string, { type: 'string' | 'boolean'; help: string }>;
  run(values: OptionValues): Promise<number>;
}

/**
 * Runs a command; an option error its run() finds (missing, malformed) carries the usage line,
 * as parseArgs' unknown-option errors do, so every option error shows what to type instead.
 */
export async function runCommand(command: Command, values: OptionValues): Promise<number> {
  try {
    return await command.run(values);
  } catch (err) {
    if (err instanceof MeshcarError && err.code === 'usage' && !err.message.includes('; usage: ')) throw new MeshcarError('usage', `${err.message}; usage: ${command.usage}`);
    throw err;
  }
}

export function required(values: OptionValues, name: string): string {
  const value = values[name];
  if (typeof value !== 'string') throw new MeshcarError('usage', `--${name} is required`);
  if (value.trim() === '') throw new MeshcarError('usage', `--${name} is empty: give it a value`);
  return value;
}

/**
 * A duration option of at least 1s and at most `max` (ms, with `why` it is the most); a longer
 * one would make an invalid date (a stack trace) or a credential that never expires.
 */
export function durationOption(values: OptionValues, name: string, fallback: string, max: { ms: number; why: string }): number {
  const text = typeof values[name] === 'string' ? (values[name] as string) : fallback;
  const ms = parseDuration(text);
  const quoted = clip(text, QUOTED_MAX);
  if (ms === undefined || ms < 1000) throw new MeshcarError('usage', `--${name} "${quoted}" is not a duration of at least 1s (write 30s, 5m, 1h or 24h)`);
  if (ms > max.ms) throw new MeshcarError('usage', `--${name} "${quoted}" is too long: at most ${formatDuration(max.ms)} (${max.why})`);
  return ms;
}

export function serviceOption(values: OptionValues): string {
  const service = required(values, 'service');
  const problem = serviceNameProblem(service);
  // the value quoted cut short: the message is one line whatever was typed (or generated)
  if (problem !== undefined) throw new MeshcarError('usage', `--service ${JSON.stringify(clip(service, QUOTED_MAX))} is not a service name: ${problem}`);
  return service;
}

/**
 * Waits for SIGINT/SIGTERM, then runs the stop function. With `onRepeat`, a repeat of either
 * while it runs is ignored (`onRepeat` is told once, to log it): a sidecar's drain finishes, as
 * Envoy's and Linkerd's do, instead of the default action ending the process mid-drain and
 * cutting what is in flight. Without it, a repeat ends the process (the default action).
 * `takeOver`: called once these listeners are on, to take the signals off whoever held them
 * (StartupSignals.handOverStop); true: one already came (while the caller was starting): stop now.
 *
 * Every swap of listeners adds the new before it removes the old: Node closes a signal's watcher
 * when its last listener goes, and a signal the kernel had delivered while JavaScript was busy,
 * not yet read off libuv's queue, went with that watcher (a SIGTERM as start-up ended was lost,
 * the sidecar ran on until SIGKILL); between the two, too, the default action would end it.
 */
export function untilSignal(stop: () => Promise<void>, onRepeat?: () => void, takeOver: () => boolean = () => false): Promise<number> {
  return new Promise((resolve) => {
    let repeated = false;
    let stopped = false;
    const onRepeatSignal = (signal: NodeJS.Signals) => {
      if (onRepeat === undefined) return endByDefault(signal);
      if (!repeated) onRepeat();
      repeated = true;
    };
    const onSignal = () => {
      if (stopped) return;
      stopped = true;
      // without onRepeat too: a repeat already queued behind this one would go with the watcher
      process.on('SIGINT', onRepeatSignal).on('SIGTERM', onRepeatSignal);
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      stop().then(() => resolve(0), () => resolve(1));
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    if (takeOver()) onSignal();
  });
}

/** Ends the process as `signal`'s default action would: its listeners off, then raised again. */
function endByDefault(signal: NodeJS.Signals): void {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  // still here (a listener of someone else's kept the watcher): the exit code the shell gives a signal's end
  process.exit(128 + (osConstants.signals[signal] ?? 15));
}
