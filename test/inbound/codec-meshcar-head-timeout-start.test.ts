// head-timeout-start.test.ts again, with the inbound's HTTP/2 server on http2.codec meshcar:
// the end of an HTTP/2 caller's body is meshcar's own stream end.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./head-timeout-start.test.js');
