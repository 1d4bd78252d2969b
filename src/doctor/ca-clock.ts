// doctor's look at the CA's clock: the Date field of its answer to GET /v1/bundle, read over the
// TLS connection the CA check made, beside this host's clock. The CA backdates an SVID by at most
// a minute (x509-profile.ts backdateMs): a CA clock further ahead issues certificates that start
// in this host's future, which `meshcar run` refuses at start ("... ahead; set both clocks
// right"), while doctor's other checks all passed.

import type { TLSSocket } from 'node:tls';
import { defaultProbeBound } from './probe.js';

/** Skew past this is named: the SVID backdate (at most 60 s) no longer covers it. */
export const CA_CLOCK_SKEW_MS = 60_000;

/** What the CA's answer says of its clock: how far it reads ahead of ours (negative: behind), no Date field, or no answer in time. */
export type CaClock = { readonly aheadMs: number } | { readonly noDate: true } | { readonly noAnswer: string };

/** An IMF-fixdate (RFC 9110 §5.6.7), the only form a Date field takes: `Sun, 06 Dec 2026 07:26:29 GMT`. */
const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/;

export function caClock(socket: TLSSocket, host: string): Promise<CaClock> {
  return new Promise((resolve) => {
    let head = '';
    const done = (value: CaClock) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const bound = defaultProbeBound();
    const timer = setTimeout(() => done({ noAnswer: `no answer to GET /v1/bundle within ${bound.ms} ms (${bound.why})` }), bound.ms);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      head += chunk;
      const end = head.indexOf('\r\n\r\n');
      if (end === -1 && head.length < 16_384) return;
      const date = /\r\ndate:[ \t]*([^\r\n]*?)[ \t]*(?:\r\n|$)/i.exec(head.slice(0, end === -1 ? head.length : end))?.[1];
      // the answer took its time to come: the CA's Date was read when it was written
      done(date !== undefined && IMF_FIXDATE.test(date) ? { aheadMs: Date.parse(date) - Date.now() } : { noDate: true });
    });
    socket.once('error', (err) => done({ noAnswer: `GET /v1/bundle: ${err.message}` }));
    socket.once('close', () => done({ noAnswer: 'the connection closed before an answer to GET /v1/bundle' }));
    socket.write(`GET /v1/bundle HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

/** `3 min 20 s`, `5 h 2 min`, `12 days` for a skew. */
export function skewText(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s >= 2 * 86_400) return `${Math.floor(s / 86_400)} days`;
  if (s >= 3_600) return `${Math.floor(s / 3_600)} h ${Math.floor((s % 3_600) / 60)} min`;
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}
