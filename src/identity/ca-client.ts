// Asks the meshcar CA for an SVID: a fresh key made here (it never leaves the process), a CSR
// for our SPIFFE ID, POST /v1/sign with a join token or the current SVID's proof of possession.
// The CA is trusted only if its certificate chains to the bundle AND names the CA's SPIFFE
// ID (the transport: ca-exchange.ts); whatever it answers is accepted only after validateSvid.

import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { LookupFunction } from 'node:net';
import { MeshcarError, describeError } from '../errors.js';
import { formatApproxDuration, formatDuration } from '../config/duration.js';
import { generateWorkloadKey } from '../pki/keys.js';
import { caSpiffeId } from './spiffe-id.js';
import { validateSvidSoon, type Svid } from './svid.js';
import { buildCsr } from '../pki/csr-request.js'; // DER by hand: a sidecar never loads node-forge
import { splitPemCertificates } from '../pki/pem.js';
import { bundleRoots, chainsToRoots } from '../pki/chain-to-roots.js';
import { clip } from '../clip.js';
import { caExchange, type RawResponse } from './ca-exchange.js';
import { retryAfterMs } from '../http/retry-after.js';

export { DEFAULT_CA_TIMEOUT_MS } from './ca-exchange.js';

/** What the CA chose (an error code and message, a SPIFFE ID) is quoted cut to this many characters. */
const QUOTED_LIMIT = 200;

/**
 * Whether the CA server's own path, as it presented it on the connection that brought
 * `bundlePem`, leads into that bundle: one of its certificates is a root of it or was signed by
 * one. Every bundle a working meshcar CA hands out holds the root its server certificate chains
 * to (at each step of a root rotation too: both roots, then the new one once the server's
 * certificate is under it). One that does not is a broken CA (another CA's bundle.pem in its
 * folder), and taking it would make the sidecar refuse every peer it trusts today.
 */
export function bundleVouchedFor(presented: readonly X509Certificate[], bundlePem: string): boolean {
  let roots: X509Certificate[];
  try {
    roots = splitPemCertificates(bundlePem).map((pem) => new X509Certificate(pem));
  } catch {
    return false;
  }
  return presented.some((cert) => roots.some((root) => cert.fingerprint256 === root.fingerprint256 || (cert.checkIssued(root) && cert.verify(root.publicKey))));
}

/**
 * Why a leaf fresh from the CA has expired already, when it has: the CA's clock runs behind this
 * host's by more than the lifetime it signed. Said with the refusal, or "expired at" reads like
 * a stale certificate rather than a clock to set.
 */
function expiredOnArrival(chainPem: string): string {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(splitPemCertificates(chainPem)[0] ?? '');
  } catch {
    return '';
  }
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  if (!(notAfter <= Date.now())) return '';
  return `: it arrived expired by this host's clock, so the CA's clock is behind this host's by more than the ${formatApproxDuration(notAfter - notBefore)} the SVID lasts; set both clocks right (NTP)`;
}

export interface CaClientOptions {
  /** https://host:port of the CA server. */
  readonly url: string;
  readonly trustDomain: string;
  /** Roots the CA server's certificate must chain to (identity.ca.bundle). */
  readonly bundlePem: string;
  readonly timeoutMs?: number;
  readonly logger: Logger;
  /** Aborted when the sidecar stops: a request under way ends at once (ca_unreachable). */
  readonly signal?: AbortSignal;
  /** How the CA's host name is resolved: the process's lookups (src/name-lookups.ts) unless given (doctor's, which it can walk away from). */
  readonly lookup?: LookupFunction;
}

export type CaAuth = { readonly token: string } | { readonly svid: Svid };

export interface SignRequest {
  readonly spiffeId: string;
  readonly auth: CaAuth;
  /** Asked-for lifetime; the CA may cap it. */
  readonly ttlMs?: number;
}

/** The CA answered, with an HTTP error: its status and error code, for logs and retry policy. */
export class CaRefusedError extends MeshcarError {
  readonly status: number;
  readonly caError: string;

  constructor(status: number, caError: string, message: string, retryAfterSeconds?: number) {
    super('ca_refused', message, retryAfterSeconds === undefined ? {} : { retryAfterSeconds });
    this.status = status;
    this.caError = caError;
  }
}

export class CaClient {
  private readonly signUrl: URL;
  private readonly bundleUrl: URL;
  private readonly caId: string;
  private readonly options: CaClientOptions;
  /** The CA's latest bundle, trusted for the CA server besides the configured one. */
  private learned = '';

  constructor(options: CaClientOptions) {
    this.options = options;
    this.signUrl = new URL('/v1/sign', options.url);
    this.bundleUrl = new URL('/v1/bundle', options.url);
    if (this.signUrl.protocol !== 'https:') {
      throw new MeshcarError('config_invalid', `the CA url ${options.url} must start with https://`);
    }
    this.caId = caSpiffeId(options.trustDomain);
  }

  /**
   * A new SVID for request.spiffeId, validated, possibly starting a few minutes ahead (see
   * validateSvidSoon: check validFrom); throws ca_unreachable, ca_refused or identity_invalid.
   */
  async sign(request: SignRequest): Promise<Svid> {
    const keyPair = await generateWorkloadKey();
    const csr = await buildCsr(createPrivateKey(keyPair.privateKeyPem), createPublicKey(keyPair.publicKeyPem), request.spiffeId);
    const body = JSON.stringify(request.ttlMs === undefined ? { csr } : { csr, ttl: formatDuration(request.ttlMs) });
    const response = await caExchange(this.options, this.caId, this.learned, this.signUrl, body, request.auth);

    if (response.status !== 200) throw this.refusal(response);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(response.body) as Record<string, unknown>;
    } catch {
      throw new CaRefusedError(200, 'bad_response', `the CA at ${this.options.url} answered 200 with a body that is not JSON`);
    }
    const { spiffeId, chain, bundle } = parsed ?? {};
    if (typeof chain !== 'string' || typeof bundle !== 'string' || typeof spiffeId !== 'string') {
      throw new CaRefusedError(200, 'bad_response', `the CA at ${this.options.url} answered 200 without string "spiffeId", "chain" and "bundle"`);
    }
    if (spiffeId !== request.spiffeId) {
      throw new MeshcarError('identity_invalid', `the CA issued ${clip(spiffeId, QUOTED_LIMIT)}, but ${request.spiffeId} was asked for`);
    }
    // the bundle becomes all this workload trusts: it must hold the root the CA itself answered under
    if (!bundleVouchedFor(response.presented, bundle)) throw this.unvouched('new SVID', bundle);
    try {
      // a CA whose clock runs ahead issues certificates that start in our future: kept (the
      // join token that paid for it may be single-use), served once valid (validFrom)
      return validateSvidSoon({ privateKeyPem: keyPair.privateKeyPem, chainPem: chain, bundlePem: bundle }, request.spiffeId);
    } catch (err) {
      throw new MeshcarError('identity_invalid', `the CA's new SVID is not usable: ${describeError(err)}${expiredOnArrival(chain)}`, { cause: err });
    }
  }

  private unvouched(what: 'new SVID' | 'trust bundle', bundlePem: string): MeshcarError {
    // a body with no certificate at all (empty, an HTML page, a proxy's text) is no wrong
    // bundle.pem: said as what it is, with its start, not as the CA's folder mixed up
    if (splitPemCertificates(bundlePem).length === 0) {
      const start = bundlePem.slice(0, 100).replace(/\s+/g, ' ').trim();
      return new MeshcarError('identity_invalid', `the CA at ${this.options.url} sent a ${what === 'new SVID' ? 'new SVID whose trust bundle' : 'trust bundle that'} holds no PEM certificate (${bundlePem.length === 0 ? 'an empty body' : `${bundlePem.length} bytes: ${JSON.stringify(start)}`}); refused`);
    }
    return new MeshcarError('identity_invalid', `the CA at ${this.options.url} sent a ${what === 'new SVID' ? 'new SVID whose trust bundle' : 'trust bundle that'} does not hold the root its own certificate chains to; refused (it would make this sidecar refuse every peer it trusts now): the CA's bundle.pem is not its own`);
  }

  private refusal(response: RawResponse): CaRefusedError {
    let code = 'http_error';
    // a proxy's HTML page spans lines: one line of it, as /identity's lastError and doctor show it
    let message = response.body.slice(0, 200).replace(/\s+/g, ' ').trim() || '(an empty body)';
    try {
      const json = JSON.parse(response.body) as { error?: unknown; message?: unknown };
      // cut: the reason is logged on every retry and kept for /identity (a CA's 900 KB message was)
      if (typeof json.error === 'string') code = clip(json.error, QUOTED_LIMIT);
      if (typeof json.message === 'string') message = clip(json.message, QUOTED_LIMIT);
    } catch {
      // not JSON (a proxy's error page?): keep the start of the text
    }
    const location = response.headers.location;
    if (response.status >= 300 && response.status < 400) {
      // never followed (the target would have to pass the same checks, and a CA API never
      // moves): an empty 302 said only "refused (302 http_error): " before
      message = `it redirects${typeof location === 'string' ? ` to ${clip(location, QUOTED_LIMIT)}` : ''}, and the CA's API never does: point identity.ca.url at the meshcar CA itself`;
    }
    // RFC 9110's forms only (src/http/retry-after.ts), as the outbound reads an upstream's
    const waitMs = retryAfterMs(response.headers['retry-after']);
    const retryAfter = waitMs === undefined ? undefined : Math.ceil(waitMs / 1000);
    return new CaRefusedError(response.status, code, `the CA at ${this.options.url} refused (${response.status} ${code}): ${message}`, retryAfter);
  }

  /**
   * The CA's trust bundle now (GET /v1/bundle), as PEM text for the caller to check. The
   * connection trusts `knownBundlePem` (the bundle the workload holds) besides the configured
   * one; the answer is trusted for later requests too, such as a join token's after the root
   * the configured bundle names was retired, but only when the CA's path chains to what was
   * trusted for those before (the configured bundle, or one learned so): `knownBundlePem` may be
   * read back from disk and hold a root retired because its key leaked, whose holder could
   * stand up a server with the CA's SPIFFE ID and be sent the next join token (a review).
   */
  async fetchBundle(knownBundlePem: string): Promise<string> {
    const response = await caExchange(this.options, this.caId, this.learned, this.bundleUrl, undefined, { trust: knownBundlePem });
    if (response.status !== 200) throw this.refusal(response);
    if (!bundleVouchedFor(response.presented, response.body)) throw this.unvouched('trust bundle', response.body);
    const [leaf, ...others] = response.presented;
    if (leaf !== undefined && chainsToRoots(leaf, others, bundleRoots(`${this.options.bundlePem}\n${this.learned}`))) this.learned = response.body;
    return response.body;
  }
}
