// mtls.test.ts again, with the inbound on http2.codec node: its HTTP/2 callers then talk to Node's
// core http2 server instead of meshcar's own codec (the default, which the original file runs on),
// so the node codec keeps this file's coverage.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./mtls.test.js');
