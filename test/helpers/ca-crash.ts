// Test helper: runs a CA step (rotate-issuer or a root rotation step) in a child process that
// SIGKILLs itself just before it renames onto, or removes, a given file of the CA folder
// (test/ca/fixtures/crash-before-rename.mjs, which runs the built dist/: build first). What
// the folder holds afterwards is what a crash at that point leaves; signFromCrashedFolder says
// whether a CA server started on it still signs leaves that verify.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callCa, startTestCa } from './ca.js';
import { caToken } from '../../src/ca/commands.js';
import { buildCsr } from '../../src/pki/csr.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { splitPemCertificates } from '../../src/pki/pem.js';

const CHILD = new URL('../ca/fixtures/crash-before-rename.mjs', import.meta.url).pathname;

export type CrashStep = 'rotate-issuer' | 'add' | 'activate' | 'retire' | 'init';

/** The signal the child ended with: SIGKILL when it reached `file`, null when it finished. */
/** `skip`: removals of or writes onto `file` let through first (init writes state.json twice). */
export async function runStepKilledAt(dir: string, step: CrashStep, file: string, skip = 0): Promise<NodeJS.Signals | null> {
  const child = spawn(process.execPath, [CHILD, dir], { env: { ...process.env, CRASH_AT: file, CRASH_SKIP: String(skip), STEP: step }, stdio: 'ignore' });
  const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return signal;
}

export interface ServedLeaf {
  /** The answer's status to POST /v1/sign, over TLS trusting only the folder's bundle.pem. */
  readonly status: number;
  /** The leaf verifies under its issuer, and the issuer under a root of the bundle handed out with it. */
  readonly verifies: boolean;
  /** Serials of the roots the CA handed out with the leaf. */
  readonly bundleSerials: readonly string[];
}

/**
 * Starts a real CA server on `dir` (as `ca serve` would after a crash), asks it for a leaf with
 * a join token over TLS that trusts only the folder's bundle.pem, checks the leaf's chain, and
 * stops the server (the folder is kept).
 */
export async function signFromCrashedFolder(dir: string): Promise<ServedLeaf> {
  const ca = await startTestCa({}, dir);
  try {
    const token = await caToken(dir, 'orders', 60_000, false);
    const keys = await generateWorkloadKey();
    const csr = await buildCsr(createPrivateKey(keys.privateKeyPem), createPublicKey(keys.publicKeyPem), 'spiffe://mesh.local/svc/orders');
    const res = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', body: JSON.stringify({ csr }), headers: { authorization: `Bearer ${token}` }, ca: await readFile(join(dir, 'bundle.pem'), 'utf8') });
    if (res.status !== 200) return { status: res.status, verifies: false, bundleSerials: [] };
    const body = res.json() as { chain: string; bundle: string };
    const [leaf, issuer] = splitPemCertificates(body.chain).map((pem) => new X509Certificate(pem));
    const roots = splitPemCertificates(body.bundle).map((pem) => new X509Certificate(pem));
    const verifies = leaf !== undefined && issuer !== undefined && leaf.verify(issuer.publicKey) && roots.some((root) => issuer.checkIssued(root) && issuer.verify(root.publicKey));
    return { status: res.status, verifies, bundleSerials: roots.map((root) => root.serialNumber) };
  } finally {
    await ca.server.close();
  }
}
