// An HTTP/1.1 request target in absolute-form (`GET http://payments:80/x?y`, RFC 9112 §3.2.2)
// split into the authority and the origin-form path an HTTP/2 peer or an app takes. HTTP proxy
// clients send it to the outbound; RFC 9112 has every server accept it, the inbound too.

export interface RequestTarget {
  /** The authority of an absolute-form URI (`GET http://payments/x`), else undefined. */
  readonly authority: string | undefined;
  /** Origin-form path with query, always starting with `/` (or `*`). */
  readonly path: string;
  /**
   * An http(s) absolute-form target carried userinfo (`http://u:pw@payments/x`), left out of
   * `authority`: a request to refuse (RFC 9110 §4.2.4 has a recipient treat it as an error), not
   * to route by the name after the `@` while the Host check reads the whole.
   */
  readonly userinfo?: true;
}

/** The refusal of a target with userinfo (its text, a password perhaps, is not quoted). */
const USERINFO_REFUSED = 'an absolute-form request target must carry no userinfo (user@ before the host; RFC 9110 §4.2.4)';

/** The refusal of an http(s) target with an empty authority (`GET http:///x`): RFC 9110 §4.2.1 has a recipient reject it. */
const EMPTY_AUTHORITY_REFUSED = 'an absolute-form request target must name a host (RFC 9110 §4.2.1)';

/** Why an absolute-form target cannot be taken whatever its Host says (userinfo, an empty authority), or undefined. */
export function targetShapeProblem(target: RequestTarget): string | undefined {
  if (target.userinfo) return USERINFO_REFUSED;
  return target.authority === '' ? EMPTY_AUTHORITY_REFUSED : undefined;
}

const ORIGIN_FORM: RequestTarget = Object.freeze({ authority: undefined, path: '/' });

/**
 * Splits an HTTP/1.1 request target. Origin-form (`/x?y`) is returned as is; absolute-form
 * (`http://payments:80/x?y`, what HTTP proxies receive) yields its authority and path: `/`
 * for an empty one, or `*` for an OPTIONS with no path and no query (`method`), which asks
 * about the whole server (RFC 9112 §3.2.4, RFC 9113 §8.3.1), not about its root resource.
 */
export function parseRequestTarget(url: string | undefined, method?: string): RequestTarget {
  if (url === undefined || url === '') return ORIGIN_FORM;
  const first = url.charCodeAt(0);
  if (first === 47 /* / */ || first === 42 /* * */) return { authority: undefined, path: url };
  const scheme = url.indexOf('://');
  if (scheme === -1) return { authority: undefined, path: url };
  const start = scheme + 3;
  let end = start;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) break;
    end += 1;
  }
  let authority = url.slice(start, end);
  const at = authority.lastIndexOf('@'); // userinfo never reaches the upstream, nor a log
  if (at !== -1) authority = authority.slice(at + 1);
  // another scheme (ftp://...) is no target meshcar forwards (refused as not a path), but the
  // access log writes what it was: its userinfo (a password) is left out there too
  if (!/^https?$/i.test(url.slice(0, scheme))) return { authority: undefined, path: at === -1 ? url : `${url.slice(0, start)}${authority}${url.slice(end)}` };
  let path = url.slice(end);
  const hash = path.indexOf('#');
  if (hash !== -1) path = path.slice(0, hash);
  if (path === '') path = method === 'OPTIONS' ? '*' : '/';
  else if (path.charCodeAt(0) === 63 /* ? */) path = `/${path}`;
  return at === -1 ? { authority, path } : { authority, path, userinfo: true };
}
