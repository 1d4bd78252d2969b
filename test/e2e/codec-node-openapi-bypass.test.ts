// openapi-bypass.test.ts again, with every sidecar on http2.codec node (Node's core http2 server,
// http2-wrapper's sessions): the e2e files that cross the sidecar hop run on both codecs; the
// original file runs on the default, meshcar. The HTTP/2 requests that claim gRPC, and real gRPC,
// go through core http2's streams.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./openapi-bypass.test.js');
