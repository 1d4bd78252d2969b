// The network probes doctor is built from: a TCP or TLS dial with a deadline, a plain HTTP GET
// with one deadline for the whole answer and a cap on the body, and the peer's SPIFFE ID in
// words. Errors come back as a sentence (`nothing listening (ECONNREFUSED)`), never thrown: a
// failed probe is a finding, not a crash.

import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { describeError } from '../errors.js';
import { uriSans } from '../pki/x509-read.js';
import { svidLeafProblem } from '../identity/svid-leaf.js';
import { TLS_POLICY } from '../identity/tls-contexts.js';
import { defaultProbeBound, probeTimeout, type ProbeBound } from './probe-bound.js';
import { doctorLookup } from './child-lookups.js';

export { defaultProbeBound, PROBE_TIMEOUT_MS, setProbeTimeout, type ProbeBound } from './probe-bound.js';

/** The most of an HTTP body doctor reads: /debug/tls holds at most 100 short entries. */
export const PROBE_MAX_BODY_BYTES = 1024 * 1024;

/**
 * A socket error in words a service owner reads, with the code kept for the search engine.
 * `over`: what was spoken on the connection; a reset means a refused certificate only in TLS.
 * Always one line: OpenSSL's messages end in a newline and name its source files.
 */
export function networkProblem(err: unknown, over: 'tls' | 'http' = 'tls'): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return 'nothing listening (ECONNREFUSED)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the name does not resolve (${code})`;
  if (code === 'PROBE_TIMEOUT' || code === 'PROBE_TOO_LARGE') return describeError(err);
  if (code === 'ETIMEDOUT') return `no answer within ${defaultProbeBound().ms} ms (${defaultProbeBound().why})`;
  if (code === 'ECONNRESET' && over === 'http') return 'the connection was closed before a whole HTTP answer (ECONNRESET)';
  if (code === 'ECONNRESET') return 'the connection was reset during the handshake (the peer refused us: often our certificate is not from its CA)';
  // the first bytes back were not a TLS record: a plain-text server (HTTP, often) on that port
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_HTTP_REQUEST' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return `it does not speak TLS: what answered is not a TLS server (a plain HTTP port?) (${code})`;
  // llhttp's refusals: what answered is not an HTTP/1.1 server
  if (typeof code === 'string' && code.startsWith('HPE_')) return `its answer is not HTTP/1.1: ${oneLine(describeError(err))}${describeError(err).includes(code) ? '' : ` (${code})`}`;
  // a TLS server with no h2 to offer (the CA's port, an HTTPS/1.1 server): OpenSSL's own words name its source files
  if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') return `a TLS server that does not speak HTTP/2 (no ALPN h2): not a meshcar inbound listener (${code})`;
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE') return `the peer refused our certificate (${code})`;
  if (code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' || code === 'UNABLE_TO_GET_ISSUER_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'CERT_SIGNATURE_FAILURE') {
    return `its certificate is not from a CA in our bundle (${code})`;
  }
  if (code === 'CERT_HAS_EXPIRED') return 'its certificate has expired (CERT_HAS_EXPIRED)';
  if (code === 'CERT_NOT_YET_VALID') return 'its certificate is not valid yet (CERT_NOT_YET_VALID)';
  const message = oneLine(describeError(err));
  return message + (code && !message.includes(code) ? ` (${code})` : '');
}

/** OpenSSL's `806C...:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/...c:350:\n` as one line. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

export function withDeadline<T extends net.Socket>(socket: T, ready: string, bound: ProbeBound = defaultProbeBound()): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => socket.destroy(probeTimeout(bound)), bound.ms);
    socket.once(ready, () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export function dialTcp(host: string, port: number): Promise<net.Socket> {
  return withDeadline(net.connect({ host, port, lookup: doctorLookup }), 'connect');
}

export interface TlsDial {
  readonly host: string;
  readonly port: number;
  /** Roots the peer must chain to. */
  readonly ca: string;
  /** Our SVID, for mutual TLS. */
  readonly cert?: string;
  readonly key?: string;
  readonly alpn?: string[];
  readonly servername?: string;
  /** The dial's bound when not the probes' own (an upstream's shorter connectTimeout). */
  readonly bound?: ProbeBound;
}

/** A verified TLS connection (chain checked against `ca`; names are ours to check, by SPIFFE ID). */
export function dialTls(options: TlsDial): Promise<TLSSocket> {
  const socket = tls.connect({
    host: options.host,
    port: options.port,
    ca: options.ca,
    ...(options.cert ? { cert: options.cert, key: options.key } : {}),
    ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
    ...(options.servername && net.isIP(options.servername) === 0 ? { servername: options.servername } : {}),
    // the policy every meshcar endpoint speaks (versions, ciphers, security level): a peer the
    // sidecar refuses (an RSA-1024 key) is refused here too, not passed with a check mark
    ...TLS_POLICY,
    checkServerIdentity: () => undefined,
    lookup: doctorLookup,
  });
  return withDeadline(socket, 'secureConnect', options.bound);
}

/** Whether a TLS server answers at all (nothing verified): to say "it speaks TLS" of a port that should not. */
export async function speaksTls(host: string, port: number): Promise<boolean> {
  const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'], lookup: doctorLookup });
  try {
    await withDeadline(socket, 'secureConnect');
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

/** The peer's single URI SAN, or a sentence saying why there is none. */
export function peerSpiffeId(socket: TLSSocket): { id: string } | { problem: string } {
  const cert = socket.getPeerX509Certificate();
  if (!cert) return { problem: 'it presented no certificate' };
  // judged as the sidecar judges a peer (peer-identity.ts), or doctor would pass one it refuses
  const signing = svidLeafProblem(cert.raw, cert.ca);
  if (signing !== undefined) return { problem: signing };
  const uris = uriSans(cert);
  if (uris.length !== 1) return { problem: `its certificate carries ${uris.length} URI SANs, an SVID exactly one` };
  return { id: uris[0] as string };
}

/**
 * TLS 1.3 servers verify the client certificate after the client's handshake is done: a
 * refusal arrives as an alert a moment later. Waits briefly for one, so "handshake OK" is real.
 */
export function refusedAfterHandshake(socket: TLSSocket, ms = 150): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off('error', onError);
      socket.off('close', onClose);
      resolve(undefined);
    }, ms);
    const onError = (err: Error) => {
      clearTimeout(timer);
      resolve(err);
    };
    const onClose = () => {
      clearTimeout(timer);
      resolve(Object.assign(new Error('the peer closed the connection right after the handshake'), { code: 'ECONNRESET' }));
    };
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}

/**
 * An HTTP/2 PING round trip in ms: over an established TLS socket (`socket`, for an upstream
 * sidecar) or a fresh h2c connection to `url` (for an h2c app).
 */
export function http2Ping(url: string, socket?: TLSSocket): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, socket ? { createConnection: () => socket } : { lookup: doctorLookup });
    const bound = defaultProbeBound();
    // the bound's own error: destroying the session cancels the PING first, and its "HTTP2 ping
    // cancelled" is what the check said of a peer that never answered
    let timedOut: Error | undefined;
    const timer = setTimeout(() => session.destroy((timedOut = probeTimeout(bound, 'no PING answer'))), bound.ms);
    session.once('error', (err) => {
      clearTimeout(timer);
      reject(timedOut ?? err);
    });
    // a PING sent before the session is set up is cancelled: wait for it
    session.once('connect', () =>
      session.ping((err, duration) => {
        clearTimeout(timer);
        session.close();
        if (err) reject(timedOut ?? err);
        else resolve(duration);
      }),
    );
  });
}

const DOCTOR_HEADERS = Object.freeze({ 'user-agent': 'meshcar-doctor' });

export interface HttpAnswer {
  readonly status: number;
  readonly version: string;
  readonly contentType: string;
  /** Empty when only the head was asked for. */
  readonly body: string;
}

export interface HttpProbeLimits {
  /** For the whole answer: an idle timeout alone lets a server trickling a byte a second hold doctor forever. */
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
}

/** The limits of an HTTP probe: the probes' bound (3 s, or --timeout) and PROBE_MAX_BODY_BYTES. */
export function httpProbeLimits(): HttpProbeLimits {
  return { timeoutMs: defaultProbeBound().ms, maxBodyBytes: PROBE_MAX_BODY_BYTES };
}

/**
 * GET `path` over HTTP/1.1; with `headOnly` the answer's head is enough (the app check) and the
 * body is never read. The connection is closed either way, so nothing keeps doctor running.
 */
export function httpGet(host: string, port: number, path: string, options: { headOnly?: boolean; limits?: HttpProbeLimits; hostHeader?: string } = {}): Promise<HttpAnswer> {
  const limits = options.limits ?? httpProbeLimits();
  return new Promise((resolve, reject) => {
    const headers = options.hostHeader === undefined ? DOCTOR_HEADERS : { ...DOCTOR_HEADERS, host: options.hostHeader };
    const req = http.get({ host, port, path, agent: false, lookup: doctorLookup, headers }, (res) => {
      const head = { status: res.statusCode ?? 0, version: res.httpVersion, contentType: String(res.headers['content-type'] ?? '') };
      if (options.headOnly) {
        clearTimeout(timer);
        req.destroy();
        resolve({ ...head, body: '' });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limits.maxBodyBytes) req.destroy(Object.assign(new Error(`its answer to GET ${path} is over ${limits.maxBodyBytes} bytes`), { code: 'PROBE_TOO_LARGE' }));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ ...head, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    // the probes' own bound says how to give more; limits a caller chose say nothing more
    const bound = limits.timeoutMs === defaultProbeBound().ms ? defaultProbeBound() : { ms: limits.timeoutMs, why: '' };
    const timer = setTimeout(() => req.destroy(probeTimeout(bound)), limits.timeoutMs);
    req.on('error', fail);
  });
}
