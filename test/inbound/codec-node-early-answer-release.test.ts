// early-answer-release.test.ts again, with the inbound on http2.codec node (Node's core http2
// server; the original file runs on the default, meshcar's own codec).

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./early-answer-release.test.js');
