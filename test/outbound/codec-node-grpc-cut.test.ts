// grpc-cut.test.ts again on http2.codec node: the outbound's upstream streams are Node's core
// http2 streams, whose rstCode Node sets itself when their session goes (the original file runs
// on the default codec, meshcar).

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./grpc-cut.test.js');
