// The keys that sign join tokens, kept apart from the issuer so tokens survive issuer and root
// rotations: token.key (the current private key, 0600) and token-keys.json (the public keys that
// still verify, by kid, and the kids of retired keys). A rotation keeps the previous key
// verifying, so a token made just before it still works until it expires; the one before that
// is retired, and its tokens are refused with bad_token. Every public key of the list is read
// when the list is: one that does not parse (hand-edited, or written by an older version) is the
// same one-line refusal as a bad token.key, naming `ca rotate-token-key`, and that rotation drops
// such a key (its kid retired, a warning) instead of carrying it as the previous key; it was
// Node's decoder error from the constructor, a stack trace and exit 70, from every command.

import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshcarError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { generateWorkloadKey } from '../pki/keys.js';
import type { TokenSigningKey } from './join-tokens.js';
import { shellWord } from '../shell-word.js';
import { firstRefusalInOrder } from '../first-refusal.js';

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

/** The public key of a list entry, or why the entry is not one. */
function entryKey(entry: unknown, index: number): KeyObject | string {
  const k = entry as Partial<TokenKeyInfo> | null;
  const which = typeof k?.kid === 'string' ? `key ${JSON.stringify(k.kid.slice(0, 40))}` : `key ${index + 1}`;
  if (typeof k !== 'object' || k === null || typeof k.kid !== 'string' || (k.state !== 'current' && k.state !== 'previous') || typeof k.publicKeyPem !== 'string') {
    return `${which} is not {kid, state: current|previous, createdAt, publicKeyPem}`;
  }
  try {
    return createPublicKey(k.publicKeyPem);
  } catch {
    return `the publicKeyPem of ${which} is not a PEM public key`;
  }
}

export class TokenKeys {
  /**
   * @param verifiers each listed kid's public key, read with the list
   * @param dropped what a rotation left out of the list because it could not be read (a warning)
   */
  private constructor(
    readonly signer: TokenSigningKey,
    readonly info: TokenKeysFile,
    private readonly verifiers: ReadonlyMap<string, KeyObject>,
    readonly dropped: readonly string[] = [],
  ) {}

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

  /** The token keys, or undefined when neither file exists (ca serve makes the first): nothing written (ca status, check). */
  static async read(dir: string): Promise<TokenKeys | undefined> {
    const read = (file: string) => readFile(join(dir, file), 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    let key: KeyObject;
    let file: TokenKeysFile;
    const verifiers = new Map<string, KeyObject>();
    try {
      const [keyPem, list] = await firstRefusalInOrder([read(TOKEN_KEY_FILE), read(TOKEN_KEYS_FILE)]);
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
      if (typeof file !== 'object' || file === null || !Array.isArray(file.keys)) throw new Error(`${TOKEN_KEYS_FILE} holds no list of keys`);
      for (const [i, entry] of file.keys.entries()) {
        const publicKey = entryKey(entry, i);
        if (typeof publicKey === 'string') throw new Error(`${TOKEN_KEYS_FILE}: ${publicKey}`);
        verifiers.set(entry.kid, publicKey);
      }
    } catch (err) {
      throw new MeshcarError('ca_missing', `the token keys in ${dir} cannot be read (${(err as Error).message}); "meshcar ca rotate-token-key --dir ${shellWord(dir)}" makes a new one (tokens already handed out stop working)`);
    }
    const kid = kidOf(key);
    if (!file.keys?.some((k) => k.kid === kid && k.state === 'current')) {
      throw new MeshcarError('ca_missing', `${join(dir, TOKEN_KEY_FILE)} is not the current key of ${join(dir, TOKEN_KEYS_FILE)}; "meshcar ca rotate-token-key --dir ${shellWord(dir)}" makes a new one (tokens already handed out stop working)`);
    }
    return new TokenKeys({ kid, key }, { keys: file.keys, retired: Array.isArray(file.retired) ? file.retired : [] }, verifiers);
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
    const retired = [...(existing?.retired ?? [])].filter((kid) => typeof kid === 'string');
    const dropped: string[] = [];
    for (const [i, k] of (existing?.keys ?? []).entries()) {
      // a key that cannot verify anything is not carried: it would make the new list unreadable
      const unreadable = entryKey(k, i);
      if (typeof unreadable === 'string') {
        dropped.push(unreadable);
        if (typeof k?.kid === 'string') retired.push(k.kid);
      } else if (mode === 'rotate' && k.state === 'current') keys.push({ ...k, state: 'previous' });
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
    return dropped.length === 0 ? rotated : new TokenKeys(rotated.signer, rotated.info, rotated.verifiers, dropped);
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

/** The warning line for the keys a rotation dropped as unreadable, or undefined when none was. */
export function droppedKeysWarning(dir: string, keys: TokenKeys): string | undefined {
  if (keys.dropped.length === 0) return undefined;
  return `${join(dir, TOKEN_KEYS_FILE)}: dropped ${keys.dropped.length} key(s) that could not be read rather than keep them (${keys.dropped.join('; ')}); their kids are retired, and tokens they signed are refused`;
}
