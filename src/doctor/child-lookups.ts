// doctor's host-name lookups, in a child process it can walk away from. The system resolver
// (getaddrinfo) cannot be cancelled: a name whose resolver never answers holds a thread of
// libuv's pool for resolv.conf's whole timeout × attempts × nameservers, and a process does not
// end until its pool's threads do (libuv joins them at exit). In-process, a hung name kept
// `doctor --timeout 1s` running for that whole timeout (15 s in the test, 30 s with
// resolv.conf's defaults and three nameservers). One child runs the same getaddrinfo (Node's
// dns.lookup) for every name doctor asks, each answer bounded by the probes' bound here; the
// child is killed when doctor ends. Its answers come on a channel of their own (fd 3), and it
// starts without NODE_OPTIONS: a preload printing to stdout, or `--experimental-default-type=module`,
// broke every lookup of a first version (a child per name, whose stdout was the answer; 60
// names started 60 processes at once, and their start-up ran out the bound).

import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { LookupFunction } from 'node:net';
import { connectionLookup, lookupThreads, NameLookups, type LookupAll } from '../name-lookups.js';
import { defaultProbeBound, probeTimeout } from './probe-bound.js';

/** The child: a name per line (JSON) on stdin, an answer per line (JSON) on fd 3, as each lookup ends. */
const CHILD = `const dns = require('dns'), fs = require('fs');
let rest = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (text) => {
  rest += text;
  for (let nl = rest.indexOf('\\n'); nl !== -1; nl = rest.indexOf('\\n')) {
    const host = JSON.parse(rest.slice(0, nl));
    rest = rest.slice(nl + 1);
    dns.lookup(host, { all: true, verbatim: true }, (err, addresses) => fs.writeSync(3, JSON.stringify(err ? { host, code: err.code, message: err.message } : { host, addresses }) + '\\n'));
  }
});
process.stdin.on('end', () => process.exit(0));`;

/**
 * The child's thread pool: libuv lets lookups take half of it (64 here). doctor asks every name
 * at once and once only, so a hung name cannot be known slow beforehand (the scheduler's guard
 * needs a lookup that took long before): with 16 threads, eight hung names held all eight lookup
 * threads and a name /etc/hosts answers was reported "did not resolve". A config naming more
 * than 63 names that hang is past this.
 */
const CHILD_THREADS = '128';
/** An answer line longer than this is not a list of addresses. */
const MAX_LINE = 1024 * 1024;

type Records = Awaited<ReturnType<LookupAll>>;
interface Waiter {
  resolve(records: Records): void;
  reject(err: Error): void;
}

interface Resolver {
  readonly child: ChildProcess;
  readonly waiting: Map<string, Waiter>;
}

let resolver: Resolver | undefined;

function startResolver(): Resolver {
  const env: NodeJS.ProcessEnv = { ...process.env, UV_THREADPOOL_SIZE: CHILD_THREADS };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--input-type=commonjs', '-e', CHILD], { env, stdio: ['pipe', 'ignore', 'ignore', 'pipe'] });
  const started: Resolver = { child, waiting: new Map() };
  const answers = child.stdio[3] as Readable;
  const names = child.stdin as Writable;
  // neither keeps doctor alive: a lookup waiting has its bound's timer, which does
  child.unref();
  (answers as Readable & { unref(): void }).unref();
  (names as Writable & { unref(): void }).unref();
  names.on('error', () => undefined);
  let rest = '';
  answers.setEncoding('utf8');
  answers.on('data', (text: string) => {
    rest += text;
    for (let nl = rest.indexOf('\n'); nl !== -1; nl = rest.indexOf('\n')) {
      answered(started, rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
    if (rest.length > MAX_LINE) child.kill('SIGKILL');
  });
  const gone = (err: Error) => {
    if (resolver === started) resolver = undefined;
    for (const waiter of started.waiting.values()) waiter.reject(err);
    started.waiting.clear();
  };
  child.once('error', gone);
  child.once('exit', () => gone(new Error('the lookup helper process ended')));
  return started;
}

function answered(from: Resolver, line: string): void {
  let answer: { host?: string; code?: string; message?: string; addresses?: Records };
  try {
    answer = JSON.parse(line) as typeof answer;
  } catch {
    return;
  }
  const waiter = answer.host === undefined ? undefined : from.waiting.get(answer.host);
  if (waiter === undefined) return; // its bound ran out: nobody waits for it
  from.waiting.delete(answer.host as string);
  if (answer.addresses) waiter.resolve(answer.addresses);
  else waiter.reject(Object.assign(new Error(answer.message ?? `getaddrinfo failed for ${answer.host}`), { code: answer.code, hostname: answer.host }));
}

// a child still waiting on its resolver when doctor ends would outlive it: ended with it
process.once('exit', () => resolver?.child.kill('SIGKILL'));

const childResolver: LookupAll = (hostname) =>
  new Promise((resolve, reject) => {
    const bound = defaultProbeBound();
    const current = (resolver ??= startResolver());
    const timer = setTimeout(() => {
      current.waiting.delete(hostname);
      reject(probeTimeout(bound, 'the name did not resolve'));
    }, bound.ms);
    // NameLookups asks one lookup of a name at a time: one waiter per name
    current.waiting.set(hostname, {
      resolve: (records) => {
        clearTimeout(timer);
        resolve(records);
      },
      reject: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    });
    (current.child.stdin as Writable).write(`${JSON.stringify(hostname)}\n`);
  });

/** doctor's lookups: one of a name at a time, whoever asks, no more at once than the child's lookup threads (name-lookups.ts). */
export const doctorLookups = new NameLookups(childResolver, lookupThreads(CHILD_THREADS));

/** doctorLookups as the `lookup` option of a connection (net, tls, http, http2). */
export const doctorLookup: LookupFunction = connectionLookup(doctorLookups);
