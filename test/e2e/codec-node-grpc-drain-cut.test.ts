// grpc-drain-cut.test.ts again, with every sidecar on http2.codec node: the calls the draining
// outbound ends are carried upstream on Node's core http2 sessions (the original file runs on
// the default codec, meshcar).

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./grpc-drain-cut.test.js');
