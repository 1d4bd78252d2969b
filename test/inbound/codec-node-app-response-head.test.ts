// app-response-head.test.ts again, with the inbound on http2.codec node: every HTTP/2 caller in
// that file then talks to Node's core http2 server instead of meshcar's own codec (the default,
// which the original file runs on). The response head then goes out as the object Node's core http2
// takes, so the same field-by-field rules are checked on that path.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./app-response-head.test.js');
