// early-answer-release.test.ts again, with the inbound on http2.codec meshcar.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./early-answer-release.test.js');
