// mesh-grpc-timeouts.test.ts again, with both sidecars on http2.codec node (Node's core http2
// and http2-wrapper; the original file runs on the default, meshcar's own codec): the end of
// the request, the idle timeout and the cut of a quiet stream cross the mTLS hop on Node's.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./mesh-grpc-timeouts.test.js');
