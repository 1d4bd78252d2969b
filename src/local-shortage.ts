// Connect errors that say this host ran short of something, whatever the peer it was dialling:
// descriptors, local ports, socket buffers. The peer (an upstream endpoint, or the local app)
// is not at fault: the outbound does not back the endpoint off or eject it, and the inbound
// answers 503 (which a caller's outbound retries elsewhere) rather than 502 "the app closed the
// connection", and says so in a warn line. (The inbound reads EADDRNOTAVAIL toward an IPv6 app as
// an app it cannot reach, app-errors.ts: a host without IPv6 is the likelier cause there.)

const LOCAL_SHORTAGES: Readonly<Record<string, string>> = {
  EMFILE: 'this process has no file descriptor left',
  ENFILE: 'the system has no file descriptor left',
  EADDRNOTAVAIL: 'this host has no local port (or address) left for the connection',
  ENOBUFS: 'this host has no socket buffer space left',
};

/** What this host ran short of, in words, for a connect error's code; undefined when the code is no shortage. */
export function localShortage(code: string | undefined): string | undefined {
  return code !== undefined && Object.hasOwn(LOCAL_SHORTAGES, code) ? LOCAL_SHORTAGES[code] : undefined;
}
