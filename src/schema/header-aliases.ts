// A header that some servers read as a declared header parameter under another name: CGI and
// WSGI hand headers to the app as HTTP_* variables with `-` turned into `_`, so `X_Owner: evil`
// and `X-Owner: me` are both HTTP_X_OWNER to a server that does not drop names with `_`
// (uWSGI; gunicorn before 22, Django's and waitress's servers drop them), and which one the
// app gets is the server's choice. The check holds `X-Owner`; the other would reach such an app
// unchecked, so a request carrying both spellings of a declared header, or only the `_` one,
// is refused.

import type { IncomingHttpHeaders } from 'node:http';
import { clip } from '../clip.js';
import { MAX_QUOTED } from './violations.js';

/** The name CGI and WSGI servers read a header as (lower-case in, lower-case out): `x_owner` is x-owner to them. */
export function cgiReading(name: string): string {
  return name.indexOf('_') === -1 ? name : name.replace(/_/g, '-');
}

/** The message for a header named as a declared one with `_` for `-`, or undefined. `declared`: lower-case names. */
export function underscoreAlias(headers: IncomingHttpHeaders, declared: readonly string[]): string | undefined {
  for (const name in headers) {
    const dashed = cgiReading(name);
    if (dashed !== name && declared.includes(dashed) && !declared.includes(name)) return `header/${dashed}: is given as ${clip(name, MAX_QUOTED)}, which CGI and WSGI servers read as ${dashed}; send it as ${dashed}`;
  }
  return undefined;
}
