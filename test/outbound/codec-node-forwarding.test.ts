// forwarding.test.ts again, with the outbound's upstream sessions on http2.codec node
// (http2-wrapper over Node's core http2) instead of meshcar's own codec (the default, which the
// original file runs on). The request head then goes upstream as the object core http2 takes
// (hop-by-hop fields dropped, x-request-id kept or made, Host as :authority).

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./forwarding.test.js');
