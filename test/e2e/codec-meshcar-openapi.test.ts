// openapi.test.ts again, with every sidecar on http2.codec meshcar (the whole e2e suite runs on
// both codecs; the original file runs on the default): the sidecar hop carries the bodies the
// schema check read (outbound enforce sends them as one piece) and the refusals.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./openapi.test.js');
