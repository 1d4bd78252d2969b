// workers.test.ts again, with every sidecar on http2.codec meshcar (issue 9: the whole e2e suite
// runs on both codecs; the original file runs on the default): the workers' sessions between
// sidecars are the codec's.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./workers.test.js');
