// The keys that sign join tokens, kept apart from the issuer so tokens survive issuer and root
// rotations: token.key (the current private key, 0600) and token-keys.json (the public keys that
// still verify, by kid, and the kids of retired keys). A rotation keeps the previous key
// verifying, so a token made just before it still works until it expires; the one before that
// is retired, and its tokens are refused with bad_token.

import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshcarError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { generateWorkloadKey } from '../pki/keys.js';
import type { TokenSigningKey } from './join-tokens.js';
import { shellWord } from '../shell-word.js';

export const TOKEN_KEY_FILE = 'token.key';
export const TOKEN_KEYS_FILE = 'token-keys.json';

export interface TokenKeyInfo {
  readonly kid: string;
  readonly state: 'current' | 'previous';
  readonly createdAt: string;
  readonly publicKeyPem: string;
}

interface TokenKeysFile {
  readonly keys: readonly TokenKeyInfo[];
  readonly retired: readonly string[];
}

/** The RFC 7638-style idea, simply: a short hash of the public key. */
function kidOf(key: KeyObject): string {
  return createHash('sha256').update(createPublicKey(key).export({ type: 'spki', format: 'der' })).digest('base64url').slice(0, 16);
}

export class TokenKeys {
  private readonly verifiers: Map<string, KeyObject>;

  private constructor(readonly signer: TokenSigningKey, readonly info: TokenKeysFile) {
    this.verifiers = new Map(info.keys.map((k) => [k.kid, createPublicKey(k.publicKeyPem)] as const));
  }

  /** For verifyJoinToken: the public key of a kid this CA still accepts. */
  readonly keyFor = (kid: string): KeyObject => {
    const key = this.verifiers.get(kid);
    if (key) return key;
    if (this.info.retired.includes(kid)) throw new MeshcarError('bad_token', 'the join token was signed by a token key this CA has retired; ask for a new token (meshcar ca token)');
    throw new MeshcarError('bad_token', 'the join token was not signed by this CA');
  };

  /**
   * The token keys; a CA folder made before they existed (neither file there) gets its first
   * key now, so tokens work after an upgrade without a step of their own.
   */
  static async load(dir: string): Promise<TokenKeys> {
    return (await TokenKeys.read(dir)) ?? TokenKeys.rotate(dir, 'rotate');
  }

  /** The token keys, or undefined when neither file exists. */
  private static async read(dir: string): Promise<TokenKeys | undefined> {
    const read = (file: string) => readFile(join(dir, file), 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    let key: KeyObject;
    let file: TokenKeysFile;
    try {
      const [keyPem, list] = await Promise.all([read(TOKEN_KEY_FILE), read(TOKEN_KEYS_FILE)]);
      if (keyPem === undefined && list === undefined) return undefined;
      if (keyPem === undefined || list === undefined) throw new Error(`${keyPem === undefined ? TOKEN_KEY_FILE : TOKEN_KEYS_FILE} is missing`);
      // a token.key that is not a key (a token written over it) has the same way out as a bad
      // list; it was Node's own decoder error, a stack trace and exit 70
      try {
        key = createPrivateKey(keyPem);
      } catch {
        throw new Error(`${TOKEN_KEY_FILE} is not a PEM private key`);
      }
      file = JSON.parse(list) as TokenKeysFile;
    } catch (err) {
      throw new MeshcarError('ca_missing', `the token keys in ${dir} cannot be read (${(err as Error).message}); "meshcar ca rotate-token-key --dir ${shellWord(dir)}" makes a new one (tokens already handed out stop working)`);
    }
    const kid = kidOf(key);
    if (!file.keys?.some((k) => k.kid === kid && k.state === 'current')) {
      throw new MeshcarError('ca_missing', `${join(dir, TOKEN_KEY_FILE)} is not the current key of ${join(dir, TOKEN_KEYS_FILE)}`);
    }
    return new TokenKeys({ kid, key }, { keys: file.keys, retired: file.retired ?? [] });
  }

  /**
   * 'rotate' makes a new current key, keeps the one it replaces verifying and retires any
   * before that; 'retire-previous' (root retire) retires every key but the current one.
   */
  /** Whether the current token key was made at or after `sinceMs` (a rotation already done, read from the list alone). */
  static async rotatedSince(dir: string, sinceMs: number): Promise<boolean> {
    const list = await readKeyList(dir);
    return list?.keys.some((k) => k.state === 'current' && Date.parse(k.createdAt) >= sinceMs) ?? false;
  }

  static async rotate(dir: string, mode: 'rotate' | 'retire-previous', now = new Date()): Promise<TokenKeys> {
    // a broken pair is replaced by a rotation (the way out the error message names); the list
    // alone is enough to go on from: a rotation killed between the new key and the list leaves
    // a key the list does not name, and the list's current key must still become the previous
    const existing = mode === 'rotate' ? ((await TokenKeys.read(dir).catch(() => undefined))?.info ?? (await readKeyList(dir))) : (await TokenKeys.read(dir))?.info;
    const keys: TokenKeyInfo[] = [];
    const retired = [...(existing?.retired ?? [])];
    for (const k of existing?.keys ?? []) {
      if (mode === 'rotate' && k.state === 'current') keys.push({ ...k, state: 'previous' });
      else if (mode === 'retire-previous' && k.state === 'current') keys.push(k);
      else retired.push(k.kid);
    }
    let keyPem: string | undefined;
    if (mode === 'rotate') {
      keyPem = (await generateWorkloadKey()).privateKeyPem;
      const key = createPrivateKey(keyPem);
      keys.unshift({ kid: kidOf(key), state: 'current', createdAt: now.toISOString(), publicKeyPem: createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString() });
    }
    // the private key first: the list never names a current key that is not on disk
    if (keyPem !== undefined) await writeFileAtomic(join(dir, TOKEN_KEY_FILE), keyPem, 0o600);
    await writeFileAtomic(join(dir, TOKEN_KEYS_FILE), `${JSON.stringify({ keys, retired: retired.slice(-50) }, null, 2)}\n`, 0o644);
    const rotated = await TokenKeys.read(dir);
    if (!rotated) throw new MeshcarError('ca_missing', `the token keys just written to ${dir} cannot be read back`);
    return rotated;
  }
}

/** token-keys.json as it is, whatever the key file beside it holds; undefined when it is missing or unreadable. */
async function readKeyList(dir: string): Promise<TokenKeysFile | undefined> {
  try {
    const list = JSON.parse(await readFile(join(dir, TOKEN_KEYS_FILE), 'utf8')) as TokenKeysFile;
    return Array.isArray(list.keys) && Array.isArray(list.retired) ? list : undefined;
  } catch {
    return undefined;
  }
}
