// openapi-readings.test.ts again, with every sidecar on http2.codec node (Node's core http2
// server, http2-wrapper's sessions): the e2e files that cross the sidecar hop run on both
// codecs; the original file runs on the default, meshcar. Core http2 passes a raw # in :path too.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./openapi-readings.test.js');
