// mesh-http1.test.ts again, with both sidecars on http2.codec meshcar (issue 9): the outbound's
// client codec then talks to the inbound's server codec on the mTLS hop, across real processes.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./mesh-http1.test.js');
