// Why a spec cannot be used: the file and the JSON pointer of the offending node inside it,
// so `meshcar check`, a failed start and a failed reload all say exactly where to look.

import { MeshcarError } from '../errors.js';

export class SpecError extends MeshcarError {
  constructor(
    readonly file: string,
    /** JSON pointer inside the spec (`/paths/~1orders/post/requestBody`); '' for the whole file. */
    readonly pointer: string,
    readonly detail: string,
  ) {
    super('config_invalid', `${file}${pointer === '' ? '' : `#${pointer}`}: ${detail}`);
    this.name = 'SpecError';
  }
}

/** `/paths/~1orders~1{id}/get`: one RFC 6901 pointer from its unescaped parts. */
export function pointerOf(...parts: ReadonlyArray<string | number>): string {
  return parts.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}
