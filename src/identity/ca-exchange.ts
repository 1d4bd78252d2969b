// The transport to the meshcar CA: one HTTPS request on a fresh connection (no pooled socket,
// no resumed session; a renewal proves the current SVID on it: src/pki/svid-proof.ts),
// trusting the configured bundle, the one the CA sent last and the one the workload holds; the
// CA must present its own SPIFFE ID (checked in the handshake and again on the response). One
// deadline covers it all; an answer is read up to 1 MiB. Failures become ca_unreachable, or
// ca_mismatch when they will not mend by themselves.

import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { MeshcarError, describeError, isMeshcarError } from '../errors.js';
import { spiffeIdOfCertificate, verifyServerSpiffeId } from './peer-identity.js';
import { classifyTlsErrorCode } from '../tls-failures/codes.js';
import type { CaAuth, CaClientOptions } from './ca-client.js';
import { TLS_POLICY } from './tls-contexts.js';
import { localShortage } from '../local-shortage.js';
import { svidProofHeader } from '../pki/svid-proof.js';
import { connectionLookup } from '../name-lookups.js';

const CA_LOOKUP = connectionLookup();

export const DEFAULT_CA_TIMEOUT_MS = 10_000;
/** A chain and a bundle are a few kilobytes; anything near this is not a signing response. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
/** Certificates of the CA server's presented path looked at (leaf, issuer, a cross-signed root: 3). */
const MAX_PRESENTED = 8;

/** The certificates the server presented, leaf first, as Node links them (bounded). */
function presentedPath(leaf: X509Certificate | undefined): X509Certificate[] {
  const path: X509Certificate[] = [];
  for (let cert = leaf; cert !== undefined && path.length < MAX_PRESENTED; cert = cert.issuerCertificate) {
    if (path.some((seen) => seen.fingerprint256 === cert?.fingerprint256)) break; // a root links to itself
    path.push(cert);
  }
  return path;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  /** The CA server's certificates as presented on this connection (see bundleVouchedFor). */
  readonly presented: readonly X509Certificate[];
}

/** How a request to the CA authenticates: a token, the current SVID, or not at all (GET /v1/bundle, trusting `trust` too). */
export type Credentials = CaAuth | { readonly trust: string };

/**
 * POST `body` (or GET without one) over TLS to the CA at `target`, verified by the bundles and
 * the CA's SPIFFE ID; `learned` is the bundle the CA sent last (trusted for later requests).
 */
export function caExchange(options: CaClientOptions, caId: string, learned: string, target: URL, body: string | undefined, auth: Credentials): Promise<RawResponse> {
const { url, timeoutMs = DEFAULT_CA_TIMEOUT_MS } = options;
  const headers: Record<string, string | number> = body === undefined ? {} : {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    accept: 'application/json',
  };
  const renewal = 'svid' in auth;
  // the current SVID's bundle is as trusted as the configured one (the CA sent it to us over
  // a verified channel) and keeps renewal working after the CA adds a root
  const known = renewal ? auth.svid.bundlePem : 'trust' in auth ? auth.trust : undefined;
  const ca = [options.bundlePem, learned, known ?? ''].join('\n');
  if ('token' in auth) headers.authorization = `Bearer ${auth.token}`;

  options.logger.debug({ url, path: target.pathname, renewal }, 'calling the CA');
  return new Promise<RawResponse>((resolve, reject) => {
    let settled = false;
    const unreachable = (err: unknown) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      if (isMeshcarError(err) && err.code === 'upstream_identity_mismatch') {
        // a server that chains to our bundle but is another trust domain's CA (or no CA) will
        // not change by itself: a config mistake, not an outage, so it is never retried
        reject(new MeshcarError('ca_mismatch', `the server at ${url} is not the meshcar CA of trust domain "${options.trustDomain}" (${err.message}); this will not mend itself: set trustDomain to the CA's trust domain, or point identity.ca.url and identity.ca.bundle at the CA of "${options.trustDomain}"`, { cause: err }));
        return;
      }
      const code = (err as NodeJS.ErrnoException).code;
      if (classifyTlsErrorCode(code) === 'unknown_ca') {
        // the CA answered, with a certificate our bundle does not vouch for: a wrong bundle
        // (or another CA on the address) stays wrong, so it is never retried; doctor's words
        reject(new MeshcarError('ca_mismatch', `the CA's certificate at ${url} does not chain to identity.ca.bundle (${code}); this will not mend itself: use the bundle.pem of the CA that serves ${url} (as it is now: a bundle from before a "root retire" holds only the retired root), and a join token made after "root activate" if this one is older; if what serves ${url} is no meshcar CA of this trust domain (meshcar doctor says which), correct identity.ca.url instead`, { cause: err }));
        return;
      }
      // (as https.request's write EPROTO with OpenSSL's reason, or a TLS socket's own code)
      if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_HTTP_REQUEST' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || (code === 'EPROTO' && /wrong version number|http request|packet length too long/.test(describeError(err)))) {
        // the first bytes back were no TLS record: a plain-text server (HTTP, often) holds the
        // address, which no retry mends; "unreachable ... start the CA" sent the reader to a CA that runs
        reject(new MeshcarError('ca_mismatch', `the server at ${url} does not speak TLS (its first bytes were no TLS record: a plain HTTP port?); this will not mend itself: identity.ca.url must name the CA's listen address (meshcar ca serve), with https://`, { cause: err }));
        return;
      }
      if (code === 'CERT_NOT_YET_VALID') {
        // the CA answered: the clocks disagree (ours behind, or the CA's ahead), which a retry
        // may outlast (the CA's certificate is backdated 10 min) but no fix of the URL mends
        reject(new MeshcarError('ca_unreachable', `the CA's certificate at ${url} is not valid yet by this host's clock (${code}): this host's clock is behind the CA's, or the CA's is ahead; set both right (NTP)`, { cause: err }));
        return;
      }
      // out of descriptors, this process's (EMFILE) or the system's (ENFILE), not the CA: "unreachable"
      // sent the reader to a CA that runs. (EADDRNOTAVAIL may be the CA's address itself, an IPv6
      // one on a host without IPv6: the plain words below, which quote it, stay for it.)
      if (code === 'EMFILE' || code === 'ENFILE') {
        const raise = code === 'EMFILE' ? "raise this sidecar's nofile (ulimit -n)" : 'raise the system-wide limit (fs.file-max)';
        reject(new MeshcarError('ca_unreachable', `could not reach the CA at ${url}: ${localShortage(code)} (${code}); the CA is not at fault: ${raise}, or find what holds the descriptors; it asks again`, { cause: err }));
        return;
      }
      // (ours as they are: the renewal proof's refusals, ca_mismatch and identity_invalid, are not outages)
      reject(isMeshcarError(err) && (err.code === 'ca_unreachable' || err.code === 'ca_mismatch' || err.code === 'identity_invalid') ? err : new MeshcarError('ca_unreachable', `the CA at ${url} is unreachable: ${describeError(err)}`, { cause: err }));
    };
    let req: ReturnType<typeof https.request>;
    try {
      req = https.request(target, {
        method: body === undefined ? 'GET' : 'POST',
        headers,
        ca,
        // the policy of every meshcar endpoint (the CA's port offers nothing else): a server that
        // negotiates less, or asks to renegotiate, is not the meshcar CA
        ...TLS_POLICY,
        checkServerIdentity: verifyServerSpiffeId(caId),
        // a fresh agent per request: no pooled socket and no resumed TLS session, so every
        // request runs the full chain and SPIFFE ID check above
        agent: false,
        // the CA named by host name: looked up through the process's scheduler, one lookup of
        // the name at a time, never the last lookup thread (name-lookups.ts)
        lookup: options.lookup ?? CA_LOOKUP,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      // a header value Node refuses (bootstrap.ts checks the token's form first): a config
      // mistake that no retry mends, never an escape from this promise as a TypeError (exit 70)
      reject(new MeshcarError('identity_invalid', `the request to the CA at ${url} could not be made: ${describeError(err)}`, { cause: err }));
      return;
    }
    // one deadline for connect, handshake, request and response together
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    // before a response, failures arrive here; after it, on the response (Node's http rules)
    req.on('error', unreachable);
    req.on('response', (res) => {
      // belt and braces: the check above is skipped on resumed sessions, this one never is
      const peer = (res.socket as TLSSocket).getPeerX509Certificate();
      const id = peer ? spiffeIdOfCertificate(peer, options.trustDomain) : 'no certificate';
      if (typeof id === 'string' || id.uri !== caId) {
        req.destroy(new MeshcarError('upstream_identity_mismatch', `expected ${caId}: ${typeof id === 'string' ? id : id.uri}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        // retried as an outage is, but said as what it is: the CA did answer
        if (size > MAX_RESPONSE_BYTES) req.destroy(new MeshcarError('ca_unreachable', `the CA at ${url} answered more than ${MAX_RESPONSE_BYTES} bytes, which no answer of its API comes near; refused`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), presented: presentedPath(peer) });
      });
      res.on('error', unreachable);
    });
    if (!renewal) {
      req.end(body);
      return;
    }
    // a renewal proves the current SVID on this connection (src/pki/svid-proof.ts): the proof
    // signs a value of this connection's handshake, so the head is written once it is done
    req.once('socket', (socket) => {
      socket.once('secureConnect', () => {
        const tls = socket as TLSSocket;
        if (tls.getProtocol() !== 'TLSv1.3') {
          // a meshcar CA of this version speaks TLS 1.3: a retry finds the same server
          req.destroy(new MeshcarError('ca_mismatch', `the CA at ${url} negotiated ${tls.getProtocol() ?? 'no TLS version'}, and a renewal's SVID proof needs TLS 1.3; this will not mend itself: upgrade the CA (or whatever terminates TLS in front of it) to one that speaks TLS 1.3`));
          return;
        }
        try {
          req.setHeader('authorization', svidProofHeader(tls, auth.svid.chainPem, auth.svid.privateKeyPem));
        } catch (err) {
          // the SVID's own key cannot sign (it was validated when taken): not the CA's fault, and no retry mends it
          req.destroy(new MeshcarError('identity_invalid', `the renewal's SVID proof for the CA at ${url} could not be made with the current SVID's key: ${describeError(err)}`, { cause: err }));
          return;
        }
        req.end(body);
      });
    });
  });
}
