// workers.test.ts again, with every sidecar on http2.codec node (Node's core http2 server,
// http2-wrapper's sessions): the e2e files that cross the sidecar hop run on both codecs; the
// original file runs on the default, meshcar. The workers' sessions between sidecars are then core
// http2's.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./workers.test.js');
