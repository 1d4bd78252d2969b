// doctor's host-name lookups, each in a child process it can walk away from. The system
// resolver (getaddrinfo) cannot be cancelled: a name whose resolver never answers holds a
// thread of libuv's pool for resolv.conf's whole timeout × attempts × nameservers, and a
// process does not end until its pool's threads do (libuv joins them at exit). In-process, a
// hung name kept `doctor --timeout 1s` running for that whole timeout (15 s in the test, 30 s
// with resolv.conf's defaults and three nameservers). A child runs the same getaddrinfo, and is
// killed at the probes' bound. Names are few (the app, the CA, the upstreams): a child each.

import { spawn } from 'node:child_process';
import type { LookupFunction } from 'node:net';
import { connectionLookup, NameLookups, type LookupAll } from '../name-lookups.js';
import { defaultProbeBound, probeTimeout } from './probe-bound.js';

/** The child: Node's own dns.lookup (getaddrinfo, as the sidecar resolves), its answer as one JSON line. */
const CHILD = `require('dns').lookup(process.argv[1], { all: true, verbatim: true }, (err, addresses) => process.stdout.write(JSON.stringify(err ? { code: err.code, message: err.message } : { addresses })))`;

/** An answer of more than this is not a list of addresses. */
const MAX_ANSWER_BYTES = 1024 * 1024;

const children = new Set<ReturnType<typeof spawn>>();
// a child still waiting on its resolver when doctor ends would outlive it: ended with it
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

const childResolver: LookupAll = (hostname) =>
  new Promise((resolve, reject) => {
    const bound = defaultProbeBound();
    const child = spawn(process.execPath, ['-e', CHILD, hostname], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.add(child);
    let answer = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(probeTimeout(bound, 'the name did not resolve'));
    }, bound.ms);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      if (answer.length < MAX_ANSWER_BYTES) answer += text;
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(err);
    });
    child.once('close', () => {
      clearTimeout(timer);
      children.delete(child);
      let parsed: { code?: string; message?: string; addresses?: Array<{ address: string; family: number }> };
      try {
        parsed = JSON.parse(answer) as typeof parsed;
      } catch {
        reject(new Error(`the lookup of ${hostname} ended without an answer`));
        return;
      }
      if (parsed.addresses) resolve(parsed.addresses);
      else reject(Object.assign(new Error(parsed.message ?? `getaddrinfo failed for ${hostname}`), { code: parsed.code, hostname }));
    });
  });

/** doctor's lookups: one child per name at a time, whoever asks (the scheduler shares them). */
export const doctorLookups = new NameLookups(childResolver, 1024);

/** doctorLookups as the `lookup` option of a connection (net, tls, http, http2). */
export const doctorLookup: LookupFunction = connectionLookup(doctorLookups);
