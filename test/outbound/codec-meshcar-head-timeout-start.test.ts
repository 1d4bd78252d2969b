// head-timeout-start.test.ts again, with the outbound's sessions on http2.codec meshcar: the end
// of the app's body, the idle timeout of a silent stream and the deadline passed upstream ride
// on meshcar's own client streams.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./head-timeout-start.test.js');
