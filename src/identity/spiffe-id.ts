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

export function isValidTrustDomain(name: string): boolean {
  return TRUST_DOMAIN.test(name) && name.length <= 255;
}

const SERVICE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function isValidServiceName(name: string): boolean {
  return SERVICE_NAME.test(name) && name !== '.' && name !== '..';
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
