// streaming.test.ts again, with the inbound on http2.codec node: every HTTP/2 caller in that file
// then talks to Node's core http2 server instead of meshcar's own codec (the default, which the
// original file runs on).

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./streaming.test.js');
