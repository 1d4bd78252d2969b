// grpc-cut-status.test.ts again, with every sidecar on http2.codec node: the calling sidecar's
// core http2 streams are marked CANCEL when the inbound's connection goes, a code that must not
// reach the gRPC client (the original file runs on the default codec, meshcar).

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./grpc-cut-status.test.js');
