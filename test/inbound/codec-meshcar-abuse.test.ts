// abuse.test.ts again, with the inbound on http2.codec meshcar (issue 9): the codec's own
// reset budget and stream limit, not the ResetGuard, now face the abusive callers.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./abuse.test.js');
