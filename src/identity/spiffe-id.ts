// SPIFFE IDs: parsing and formatting by the rules of the SPIFFE-ID standard, so that every
// comparison of identities in meshcar goes through one strict parser.

import { MeshcarError } from '../errors.js';

export interface SpiffeId {
  readonly trustDomain: string;
  /** Path including the leading slash, or '' for the trust domain's own ID. */
  readonly path: string;
  readonly uri: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Parses a SPIFFE ID, or returns a reason why it is not one. */
export function tryParseSpiffeId(text: string): SpiffeId | string {
  if (typeof text !== 'string') return 'not a string';
  if (!text.startsWith('spiffe://')) return 'must start with spiffe://';
  if (text.length > 2048) return 'longer than 2048 bytes';
  const rest = text.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain.length === 0) return 'trust domain is empty';
  if (!TRUST_DOMAIN.test(trustDomain)) return `trust domain "${trustDomain}" may hold only lower-case letters, digits, dots, dashes and underscores`;
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const segment of segments) {
      if (segment === '') return 'path has an empty segment or a trailing slash';
      if (segment === '.' || segment === '..') return 'path may not hold . or .. segments';
      if (!PATH_SEGMENT.test(segment)) return `path segment "${segment}" may hold only letters, digits, dots, dashes and underscores`;
    }
  }
  return { trustDomain, path, uri: text };
}

export function parseSpiffeId(text: string): SpiffeId {
  const parsed = tryParseSpiffeId(text);
  if (typeof parsed === 'string') throw new MeshcarError('bad_request', `"${text}" is not a SPIFFE ID: ${parsed}`);
  return parsed;
}

/** The longest trust domain (a DNS name's limit) and service name (a path segment) accepted. */
export const MAX_TRUST_DOMAIN_LENGTH = 255;
export const MAX_SERVICE_NAME_LENGTH = 128;

/**
 * Why `name` is not a trust domain, as the end of "... is not a trust domain: ", or undefined
 * when it is one. Each rule has its own reason: a name of 300 lower-case letters was told to
 * "use lower-case letters", which it did.
 */
export function trustDomainProblem(name: string): string | undefined {
  if (!/^[a-z0-9._-]*$/.test(name) || name === '') return 'use lower-case letters, digits, dots, dashes and underscores, e.g. mesh.local';
  if (name.length > MAX_TRUST_DOMAIN_LENGTH) return `it is ${name.length} characters long, the most is ${MAX_TRUST_DOMAIN_LENGTH}`;
  // the characters alone let through ".", "..", "-" and "mesh..local": names no DNS-like
  // reader takes for a domain, and spiffe://../svc/a reads as a relative path to URL parsers
  if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(name)) return 'dots only between labels: no leading, trailing or doubled dot, e.g. mesh.local';
  if (!/[a-z0-9]/.test(name)) return 'it needs a letter or digit, e.g. mesh.local';
  return undefined;
}

export function isValidTrustDomain(name: string): boolean {
  return trustDomainProblem(name) === undefined;
}

/** Why `name` is not a service name (the last segment of spiffe://TD/svc/NAME), or undefined when it is one. */
export function serviceNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z0-9._-]*$/.test(name) || name === '') return 'use letters, digits, dots, dashes and underscores';
  if (name === '.' || name === '..') return `"${name}" is a relative path segment, which a SPIFFE ID may not hold: use a name with a letter or digit`;
  if (name.length > MAX_SERVICE_NAME_LENGTH) return `it is ${name.length} characters long, the most is ${MAX_SERVICE_NAME_LENGTH}`;
  // the metrics' peer label of the callers past the peer cap (metrics/traffic-metrics.ts): a
  // service so named would share its series (metrics review)
  if (name === '__other__') return '"__other__" is the label meshcar\'s metrics give the peers past their cap: use another name';
  return undefined;
}

export function isValidServiceName(name: string): boolean {
  return serviceNameProblem(name) === undefined;
}

/** spiffe://<trustDomain>/svc/<service>: the identity of one meshcar workload. */
export function serviceSpiffeId(trustDomain: string, service: string): string {
  return `spiffe://${trustDomain}/svc/${service}`;
}

/** The service name of a workload ID of this shape, or undefined for any other ID. */
export function serviceNameOf(id: SpiffeId): string | undefined {
  const match = /^\/svc\/([^/]+)$/.exec(id.path);
  return match?.[1];
}

/** The CA server's own identity. */
export function caSpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}/meshcar/ca`;
}
