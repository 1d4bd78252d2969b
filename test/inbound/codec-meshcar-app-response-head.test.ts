// app-response-head.test.ts again, with the inbound on http2.codec meshcar: an HTTP/2 caller's
// response head then goes out as the flat list forwardableResponseList makes (no object in
// between), so the same field-by-field rules are checked on that path.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./app-response-head.test.js');
