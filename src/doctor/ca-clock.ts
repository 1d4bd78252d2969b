// doctor's look at the CA's clock: the Date field of its answer to GET /v1/bundle, read over the
// TLS connection the CA check made, beside this host's clock. The CA backdates an SVID by at most
// a minute (x509-profile.ts backdateMs): a CA clock further ahead issues certificates that start
// in this host's future, which `meshcar run` refuses at start ("... ahead; set both clocks
// right"), while doctor's other checks all passed.

import type { TLSSocket } from 'node:tls';
import { defaultProbeBound } from './probe.js';

/** Skew past this is named: the SVID backdate (at most 60 s) no longer covers it. */
export const CA_CLOCK_SKEW_MS = 60_000;

/** How far the CA's clock reads ahead of this host's (negative: behind), or undefined when no Date came. */
export function caClockAheadMs(socket: TLSSocket, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    let head = '';
    const done = (value: number | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), defaultProbeBound().ms);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      head += chunk;
      const end = head.indexOf('\r\n\r\n');
      if (end === -1 && head.length < 16_384) return;
      const date = /\r\ndate:[ \t]*([^\r\n]*)/i.exec(head.slice(0, end === -1 ? head.length : end))?.[1];
      const at = date === undefined ? NaN : Date.parse(date);
      // the answer took its time to come: the CA's Date was read when it was written
      done(Number.isNaN(at) ? undefined : at - Date.now());
    });
    socket.once('error', () => done(undefined));
    socket.once('close', () => done(undefined));
    socket.write(`GET /v1/bundle HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

/** `3 min 20 s` for a skew. */
export function skewText(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}
