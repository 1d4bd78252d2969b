// streaming.test.ts again, with the inbound on http2.codec meshcar (issue 9): every HTTP/2 caller
// in that file then talks to meshcar's own codec instead of Node's core http2 server.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./streaming.test.js');
