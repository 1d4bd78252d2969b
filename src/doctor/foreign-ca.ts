// What serves identity.ca.url when its certificate does not chain to identity.ca.bundle: read
// without verifying (doctor's only unverified look at the CA), so the fix is the right one. Our
// CA with a bundle from elsewhere needs the CA's bundle.pem; another trust domain's CA, or a
// server that is no meshcar CA at all (a wrong port), needs the URL corrected. The bundle fix was
// given for all three, and following it for a web server or another mesh's CA led nowhere or
// into the wrong mesh.

import net from 'node:net';
import tls from 'node:tls';
import { uriSans } from '../pki/x509-read.js';
import { doctorLookup } from './child-lookups.js';
import { withDeadline } from './probe.js';
import { describeError } from '../errors.js';

/** What the server at host:port presents, unverified: its single URI SAN (or none), or no answer at all. */
export type Presented = { readonly uri: string | undefined } | { readonly unread: string };

export async function presentedUri(host: string, port: number, servername: string): Promise<Presented> {
  const socket = tls.connect({ host, port, rejectUnauthorized: false, ...(net.isIP(servername) === 0 ? { servername } : {}), lookup: doctorLookup });
  try {
    await withDeadline(socket, 'secureConnect');
    const cert = socket.getPeerX509Certificate();
    const uris = cert ? uriSans(cert) : [];
    return { uri: uris.length === 1 ? uris[0] : undefined };
  } catch (err) {
    return { unread: describeError(err) };
  } finally {
    socket.destroy();
  }
}

/** The message and fix for a CA address whose certificate our bundle does not vouch for. */
export function unchainedCa(url: string, bundle: string, expected: string, presented: Presented, problem: string): { message: string; fix: string } {
  const bundleFix = `use the bundle.pem of the CA that serves ${url} (as it is now: a bundle from before a "root retire" holds only the retired root)`;
  // not read (the second look got no answer): the likelier mistake stays the bundle, said as unsure
  if ('unread' in presented) return { message: `the CA's certificate does not chain to identity.ca.bundle ${bundle}: ${problem} (doctor could not read what it presents: ${presented.unread})`, fix: `${bundleFix}; if what serves ${url} is no meshcar CA of this trust domain, correct identity.ca.url instead` };
  if (presented.uri === expected) return { message: `the CA's certificate does not chain to identity.ca.bundle ${bundle}: ${problem}`, fix: bundleFix };
  if (presented.uri?.endsWith('/meshcar/ca')) return { message: `the server is the meshcar CA of another trust domain (${presented.uri}), not ${expected}: ${problem}`, fix: `correct identity.ca.url to this mesh's CA (the one that serves ${expected}); its bundle.pem is what identity.ca.bundle needs` };
  return { message: `reachable, but not the meshcar CA: its certificate ${presented.uri === undefined ? 'names no SPIFFE ID' : `names ${presented.uri}`}, not ${expected}, and does not chain to identity.ca.bundle (${problem})`, fix: `identity.ca.url must name the CA's listen address (meshcar ca serve): correct it` };
}
