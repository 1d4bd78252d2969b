// grpc-cancel-answered.test.ts again, with both sidecars on http2.codec node: the inbound's
// ResetGuard (src/inbound/reset-guard.ts) instead of the meshcar codec's own reset budget
// (the original file runs on the default codec, meshcar).

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./grpc-cancel-answered.test.js');
