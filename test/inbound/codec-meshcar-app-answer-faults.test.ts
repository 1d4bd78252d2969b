// app-answer-faults.test.ts again, with the inbound on http2.codec meshcar: its respond path
// (a header list, no object in between) must refuse what Node's refuses (status 999) and
// carry what the trimming made valid.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./app-answer-faults.test.js');
