// forwarding.test.ts again, with the inbound on http2.codec meshcar: what an HTTP/2 caller is
// sent (the app's head as a flat list, the app's own x-meshcar-error dropped) goes through
// meshcar's codec instead of Node's core http2 server.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./forwarding.test.js');
