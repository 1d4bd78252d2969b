// app-cancellations.test.ts again, with the outbound's upstream sessions on http2.codec node
// (http2-wrapper over Node's core http2) instead of meshcar's own codec (the default, which the
// original file runs on). Its streams, cancelled when the app walks away, are released and not held
// against the endpoint either.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./app-cancellations.test.js');
