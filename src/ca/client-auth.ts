// Who is asking the CA for a certificate (POST /v1/sign): a join token (Authorization: Bearer),
// or the caller's current SVID with its proof for this connection (Authorization: SVID, judged
// in svid-proof-check.ts), judged on every request and not once per connection: the path must
// chain to a root the CA still trusts (a root retired since must not renew its leaves) and be
// within its dates now (a keep-alive connection can outlive its certificate). Separate from
// server.ts, which serves the API and its connections: this is the decision of which grant a
// request carries, or why it carries none.

import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MeshcarError } from '../errors.js';
import { uriSans } from '../pki/x509-read.js';
import { judgeSvidProof } from './svid-proof-check.js';
import type { Authority, Grant } from './authority.js';

const MISSING = 'send a join token (Authorization: Bearer <token>) or your current SVID proven on this connection (Authorization: SVID <proof>, as meshcar sidecars make it)';

/** The grant a sign request carries, and who asked, for the audit log. */
export async function authenticate(req: IncomingMessage, authority: Authority): Promise<{ grant: Grant; who: Record<string, unknown> }> {
  const authorization = req.headers.authorization;
  if (authorization === undefined) throw new MeshcarError('unauthenticated', MISSING);
  // auth-scheme names are case-insensitive (RFC 9110 11.1, RFC 6750 2.1); the credentials are checked as they are
  const bearer = /^bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(authorization);
  if (bearer) {
    const grant = await authority.grantFromToken(bearer[1] as string);
    return { grant, who: { auth: 'token', tokenId: grant.via === 'token' ? grant.claims.jti : undefined } };
  }
  const svid = /^svid +([A-Za-z0-9_.-]+)$/i.exec(authorization);
  if (!svid) throw new MeshcarError('unauthenticated', 'the Authorization header must be "Bearer <join token>" or "SVID <proof>" (the current SVID proven on this connection, as meshcar sidecars make it)');
  const leaf = judgeSvidProof(req.socket as TLSSocket, svid[1] as string, authority.material.roots, Date.now());
  return { grant: authority.grantFromSvid(uriSans(leaf)[0] as string), who: { auth: 'svid', clientSerial: leaf.serialNumber.toLowerCase() } };
}
