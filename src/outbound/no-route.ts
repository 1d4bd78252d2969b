// The 404 no_route message of the outbound: the upstream is picked by the request's Host (or
// its absolute URL), which a newcomer's first `curl http://127.0.0.1:15001/` sets to the
// sidecar's own address; the message says how to name an upstream, not only that none matched.
// Upstream names are not listed: the outbound port may be reachable by more than the app.

/** The message for a request whose host names no upstream; '' (no host at all) asks for one. */
export function noRouteMessage(name: string): string {
  return name
    ? `no upstream is named "${name}": the request's Host (or its absolute URL) names the upstream; send Host: <a name under outbound.upstreams>`
    : 'the request names no host (send Host: <upstream>)';
}
