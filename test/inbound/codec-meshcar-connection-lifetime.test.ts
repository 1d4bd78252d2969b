// connection-lifetime.test.ts again, with the inbound on http2.codec meshcar (issue 9):
// GOAWAY at the maximum session age and destruction at certificate expiry on the own codec.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./connection-lifetime.test.js');
