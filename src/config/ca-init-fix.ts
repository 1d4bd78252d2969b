// The fix for a CA config whose dir is not there: the command that makes the CA, with the
// config's own trust domain (and make ca when the folder is the one it makes). `check` adds it at
// dir, `ca serve` to its refusal, which named a placeholder TD instead.

import { join, relative } from 'node:path';
import { shellWord } from '../shell-word.js';

/** `; make the CA first: meshcar ca init --dir DIR --trust-domain TD` for the CA folder `dir`. */
export function caInitFix(dir: string, trustDomain: string): string {
  const byMake = relative(process.cwd(), dir) === join('certs', 'ca') ? ` (or make ca${trustDomain === 'mesh.local' ? '' : ` TRUST_DOMAIN=${trustDomain}`} in the meshcar folder)` : '';
  return `; make the CA first: meshcar ca init --dir ${shellWord(dir)} --trust-domain ${trustDomain}${byMake}`;
}
