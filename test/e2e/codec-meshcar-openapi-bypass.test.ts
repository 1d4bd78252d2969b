// openapi-bypass.test.ts again, with every sidecar on http2.codec meshcar (the whole e2e suite
// runs on both codecs; the original file runs on the default): the HTTP/2 requests that claim
// gRPC, and real gRPC, through the other codec's streams.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./openapi-bypass.test.js');
