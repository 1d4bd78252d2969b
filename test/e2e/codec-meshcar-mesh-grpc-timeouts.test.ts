// mesh-grpc-timeouts.test.ts again, with both sidecars on http2.codec meshcar: the end of the
// request, the idle timeout and the cut of a quiet stream cross the mTLS hop on meshcar's own
// client and server codec.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./mesh-grpc-timeouts.test.js');
