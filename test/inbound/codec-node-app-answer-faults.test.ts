// app-answer-faults.test.ts again, with the inbound on http2.codec node: Node's core http2
// server must refuse what the default meshcar codec refuses (status 999) and carry what the
// trimming made valid.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./app-answer-faults.test.js');
