// doctor's identity checks: the workload's SVID (files readable with the right modes, key matches
// certificate, chain verifies against the bundle, SPIFFE ID is this service's, time left,
// next renewal) and, on the CA source, the join token (well-formed, unexpired, for this identity)
// and identity.dir itself (identity-dir.ts). On the CA source a stored SVID the sidecar will pass
// over but replace with its token (expired, in a folder others can write) is a warning, and the
// token is then checked as needed: the token line says whether the start will work.
// The SVID is checked against the CA's live bundle as well as the one on disk: after a root
// rotation retired the root it chains to, the sidecar's first bundle fetch throws it away, so
// doctor must not call it usable. The CA publishes no token keys: a token's signature is only
// checked by the CA, when the token is used, and the token line says so.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../errors.js';
import { deniedHint } from '../permission-denied.js';
import { applyBundle } from '../identity/bundle-refresh.js';
import { CaClient } from '../identity/ca-client.js';
import { createLogger } from '../logging.js';
import type { SidecarConfig } from '../config/sidecar-config.js';
import { STORE_FILES } from '../identity/disk-store.js';
import { lifetimeMs, remainingMs, validateSvid, type Svid } from '../identity/svid.js';
import { readTokenClaims } from '../identity/token-claims.js';
import { identityDirProblem, judgedForAnotherUser } from './identity-dir.js';
import { defaultProbeBound } from './probe.js';
import { doctorLookup } from './child-lookups.js';
import { fail, humanDuration, ok, skip, warn, type CheckResult } from './result.js';
import { shellWord } from '../shell-word.js';
import { readCheckedFile } from './read-file.js';
import { firstRefusalInOrder } from '../first-refusal.js';

/** The fix for a missing or bad token: doctor does not know the CA's folder, so it names it. */
const tokenFix = (config: SidecarConfig, file: string) => `meshcar ca token --dir <CA dir> --service ${config.service} --out ${shellWord(file)}`;

/**
 * Whether the SVID still chains to the bundle the CA hands out now (GET /v1/bundle): a sentence
 * saying why not, '' when it does, or undefined when the CA could not be asked (the CA check
 * reports why).
 */
async function liveBundleProblem(config: SidecarConfig, svid: Svid): Promise<string | undefined> {
  if (config.identity.source !== 'ca') return undefined;
  try {
    const bundlePem = await readCheckedFile(config.identity.ca.bundle);
    const client = new CaClient({ url: config.identity.ca.url, trustDomain: config.trustDomain, bundlePem, timeoutMs: defaultProbeBound().ms, logger: createLogger('silent'), lookup: doctorLookup });
    const outcome = applyBundle(svid, await client.fetchBundle(svid.bundlePem));
    return outcome.kind === 'leaf_untrusted' ? outcome.reason : '';
  } catch {
    return undefined;
  }
}

/** Under this share of its lifetime left, renewal should already have happened. */
const LOW_LIFETIME_SHARE = 0.2;

export interface IdentityOutcome {
  readonly result: CheckResult;
  /** The usable SVID, for the checks that handshake with it. */
  readonly svid: Svid | undefined;
  /** True when the sidecar needs a join token (no usable SVID on disk). */
  readonly needsToken: boolean;
}

interface Paths {
  readonly cert: string;
  readonly key: string;
  readonly bundle: string;
}

function pathsOf(config: SidecarConfig): Paths {
  const { identity } = config;
  if (identity.source === 'files') return identity.files;
  return { cert: join(identity.dir, STORE_FILES.chain), key: join(identity.dir, STORE_FILES.key), bundle: join(identity.dir, STORE_FILES.bundle) };
}

export async function checkIdentity(config: SidecarConfig, now = new Date()): Promise<IdentityOutcome> {
  const judged = await judgedIdentity(config, now);
  const note = config.identity.source === 'ca' ? await judgedForAnotherUser(config.identity.dir) : undefined;
  return note === undefined ? judged : { ...judged, result: { ...judged.result, message: `${judged.result.message}${note}` } };
}

async function judgedIdentity(config: SidecarConfig, now: Date): Promise<IdentityOutcome> {
  const outcome = await checkSvid(config, now);
  const folder = config.identity.source === 'ca' ? await identityDirProblem(config.identity.dir) : undefined;
  if (!folder) return outcome;
  // the folder is the cause to mend first: the SVID in it may read fine and still not be used
  const held = outcome.result.status === 'ok' || outcome.result.status === 'warn' ? `; it holds ${outcome.result.message}` : '';
  // a folder others can write costs the token once (the sidecar then makes it 0700): a warning,
  // and the token check below says whether that token will do; one it cannot write fails
  const result = (folder.refusesStored ? warn : fail)('identity', `${folder.message}${held}`, folder.fix);
  return { result, svid: outcome.svid, needsToken: outcome.needsToken || folder.refusesStored || folder.needsToken === true };
}

/** The SVID files: readable, 0600 key, verified chain, this service's SPIFFE ID, time left. */
async function checkSvid(config: SidecarConfig, now: Date): Promise<IdentityOutcome> {
  const name = 'identity';
  const paths = pathsOf(config);
  const fromCa = config.identity.source === 'ca';
  const read = async (file: string) => readCheckedFile(file);
  let material: { chainPem: string; privateKeyPem: string; bundlePem: string };
  try {
    const [chainPem, privateKeyPem, bundlePem] = await firstRefusalInOrder([read(paths.cert), read(paths.key), read(paths.bundle)]);
    material = { chainPem, privateKeyPem, bundlePem };
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    if (fromCa && missing) {
      return { result: skip(name, `no SVID in ${config.identity.dir} yet: the sidecar will ask the CA for one with the join token`), svid: undefined, needsToken: true };
    }
    const path = (err as NodeJS.ErrnoException).path;
    const denied = (err as NodeJS.ErrnoException).code === 'EACCES' && typeof path === 'string' ? deniedHint(path) : '';
    return { result: fail(name, `cannot read the SVID files: ${describeError(err)}${denied}`, fromCa ? 'let the sidecar write identity.dir (it needs a join token when the folder is empty)' : 'point identity.files at readable cert, key and bundle files'), svid: undefined, needsToken: fromCa };
  }
  const keyMode = (await stat(paths.key)).mode & 0o777;
  let svid: Svid;
  try {
    svid = validateSvid({ ...material, paths: { chain: paths.cert, bundle: paths.bundle } }, config.spiffeId, now);
  } catch (err) {
    const message = describeError(err);
    if (fromCa && /expired/.test(message)) {
      // what a sidecar stopped for longer than its SVID's lifetime finds: it passes the set over
      // (DiskStore.load, an info line) and asks with its join token; the token line says if it can
      return { result: warn(name, `${paths.cert}: ${message}: the sidecar passes it over at start and asks the CA for a new one with the join token`, 'nothing if the join token below is valid. The sidecar renews before expiry: if it is running, its renewals are failing (the admin line below and its log say why); if not, it was stopped for longer than the SVID lived'), svid: undefined, needsToken: true };
    }
    if (/ is not valid before /.test(message)) {
      // dates ahead of this host's clock: the issuer's clock runs ahead (or this one behind)
      const clocks = "its issuer's clock runs ahead of this host's, or this host's is behind";
      if (fromCa) return { result: warn(name, `${paths.cert}: ${message}: ${clocks}; the sidecar waits for a set that starts within minutes, and passes a later one over and asks the CA with the join token`, "set both hosts' clocks right (NTP): timedatectl status shows whether this one is synchronised"), svid: undefined, needsToken: true };
      return { result: fail(name, `${paths.cert}: ${message}: ${clocks}`, "set both hosts' clocks right (NTP); the sidecar takes the files once they are valid"), svid: undefined, needsToken: false };
    }
    const fix = /expired/.test(message)
      ? 'whoever writes identity.files must renew it' // (identity.ca: the warning above)
      : / is for spiffe:\/\/\S+, expected /.test(message)
        ? fromCa // a folder or files shared by two services, or the wrong `service`
          ? `identity.dir holds another service's SVID: give each service its own identity.dir (or correct service); the sidecar replaces it using the join token (identity.ca.token)`
          : `identity.files names another service's certificate: point it at this service's (or correct service)`
        : /validity date this host cannot read/.test(message)
        ? 'whoever issued that certificate must issue it again with dates in RFC 5280 form (UTCTime YYMMDDHHMMSSZ through 2049, GeneralizedTime YYYYMMDDHHMMSSZ after)'
        : /private key cannot be read|the key file must hold/.test(message)
        ? 'put the SVID\'s private key there, alone, as PEM, not encrypted (PKCS#8, or SEC1/PKCS#1)'
        : /private key does not match/.test(message)
        ? 'the key and certificate come from different issuances: put the key that belongs to the certificate next to it'
        : /bundle|chain|signer|issuer/i.test(message)
          ? 'the certificate was issued by a CA the bundle does not hold: use the bundle.pem of the CA that issued it'
          : undefined;
    // the file the problem is in: a key of another certificate is the key file's, a chain the
    // bundle does not hold is the pair's (the certificate file alone sent the reader to it)
    const where = /private key does not match/.test(message) ? `${paths.key} (with ${paths.cert})` : /private key cannot be read|the key file must hold/.test(message) ? paths.key : /bundle|signer|issuer/i.test(message) && !/ is for spiffe:/.test(message) ? `${paths.cert} against ${paths.bundle}` : paths.cert;
    return { result: fail(name, `${where}: ${message}`, fix), svid: undefined, needsToken: fromCa };
  }
  const live = await liveBundleProblem(config, svid);
  if (live) {
    return {
      result: fail(name, `${paths.cert} chains to ${paths.bundle} but no longer to the CA's current bundle (GET /v1/bundle; a root rotation retired its root): ${live}`, 'the sidecar replaces it at start with the join token (identity.ca.token): make sure that token is fresh'),
      svid: undefined,
      needsToken: true,
    };
  }
  const checkedLive = live === '' ? "; chains to the CA's current bundle" : '';
  const left = remainingMs(svid, now);
  const share = left / lifetimeMs(svid);
  const summary = `${svid.spiffeId}, serial ${svid.serialHex}, valid until ${svid.notAfter.toISOString()} (${humanDuration(left)} left, ${Math.round(share * 100)}% of its lifetime)`;
  if (keyMode & 0o077) {
    // who may read it, by the bits set: a group-readable key (a Secret mounted for an fsGroup) is not "others"
    const who = [keyMode & 0o070 ? 'its group' : '', keyMode & 0o007 ? 'others' : ''].filter(Boolean).join(' and ');
    return { result: fail(name, `${paths.key} is readable by ${who} (mode ${keyMode.toString(8).padStart(4, '0')}), expected 0600`, `chmod 600 ${shellWord(paths.key)}`), svid, needsToken: false };
  }
  const renewal = fromCa ? `; renewal due between ${new Date(svid.notBefore.getTime() + lifetimeMs(svid) * config.identity.renewal.from).toISOString()} and ${new Date(svid.notBefore.getTime() + lifetimeMs(svid) * config.identity.renewal.to).toISOString()}` : '';
  // the leaf's own date suggests time to spare: say which certificate ends the SVID first (an
  // intermediate or root of identity.files, not ours: our CA never lets a leaf outlive its issuer)
  if (svid.notAfter < svid.leafNotAfter) {
    return {
      result: warn(name, `${summary}: ${svid.endsWith} expires then, before the leaf (${svid.leafNotAfter.toISOString()}); from then on every peer refuses this sidecar${renewal}`, fromCa ? 'the CA issued it under a certificate that ends first: renew or replace that issuer (meshcar ca rotate-issuer)' : 'whoever writes identity.files must issue the leaf under an issuer that outlives it, or renew that issuer before then'),
      svid,
      needsToken: false,
    };
  }
  if (share < LOW_LIFETIME_SHARE) {
    return { result: warn(name, `${summary}: under ${LOW_LIFETIME_SHARE * 100}% left${renewal}`, fromCa ? 'renewal is overdue: check that the sidecar runs and reaches the CA (its log says why renewals fail)' : 'renew the files soon'), svid, needsToken: false };
  }
  return { result: ok(name, `${summary}${checkedLive}${renewal}`), svid, needsToken: false };
}

/** The join token file, when the sidecar has one configured or needs one. */
export async function checkToken(config: SidecarConfig, needsToken: boolean, now = Date.now()): Promise<CheckResult | undefined> {
  if (config.identity.source !== 'ca') return undefined;
  const name = 'join token';
  const file = config.identity.ca.token;
  if (file === undefined) {
    return needsToken ? fail(name, `no usable SVID in ${config.identity.dir} and identity.ca.token is not set`, `make a token (${tokenFix(config, 'FILE')}) and set identity.ca.token to FILE`) : undefined;
  }
  let text: string;
  try {
    text = await readCheckedFile(file);
  } catch (err) {
    const message = `cannot read ${file}: ${describeError(err)}`;
    return needsToken ? fail(name, message, `write a token with ${tokenFix(config, file)}`) : skip(name, `${message} (not needed while the SVID on disk is valid)`);
  }
  const claims = readTokenClaims(text);
  const bad = (message: string) =>
    needsToken ? fail(name, `${file}: ${message}`, `write a new token with ${tokenFix(config, file)}`) : skip(name, `${file}: ${message} (not needed while the SVID on disk is valid)`);
  if (typeof claims === 'string') return bad(claims);
  if (claims.sub !== config.spiffeId) {
    // another service's token (a mix-up): writing ours over the file would take its token away
    const message = `${file}: the token is for ${claims.sub}, expected ${config.spiffeId}`;
    const fix = `the file holds another service's token: point identity.ca.token at the token made for ${config.service}, or make one in a file of its own (meshcar ca token --dir <CA dir> --service ${config.service} --out ${config.service}.token) and point identity.ca.token there`;
    return needsToken ? fail(name, message, fix) : skip(name, `${message} (not needed while the SVID on disk is valid)`);
  }
  if (claims.expMs <= now) return bad(`the token expired at ${new Date(claims.expMs).toISOString()}`);
  // the CA publishes no token keys, so whether it still accepts the signing key shows only on use
  // nor which single-use tokens are spent: a pod whose identity.dir was lost (an emptyDir) holds
  // a token its first start spent, and the CA refuses it (401 token_used) only when it is used
  const keyNote = claims.single
    ? 'its signing key, and whether a sidecar already spent it, are checked by the CA only when it is used: a spent one is refused with 401 token_used'
    : 'its signing key is checked by the CA only when the token is used';
  return ok(name, `${file}: for ${claims.sub}, valid until ${new Date(claims.expMs).toISOString()}${claims.single ? ', single use' : ''} (${needsToken ? keyNote : `not needed while the SVID on disk is valid; ${keyNote}`})`);
}
