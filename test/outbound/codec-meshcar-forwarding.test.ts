// forwarding.test.ts again, with the outbound's sessions on http2.codec meshcar: the request
// head then goes to the upstream as the flat list meshcar's codec encodes as it is (hop-by-hop
// fields dropped, x-request-id kept or made, Host as :authority), and the answer comes back
// through meshcar's codec.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./forwarding.test.js');
