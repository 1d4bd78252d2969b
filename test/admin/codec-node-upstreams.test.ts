// upstreams.test.ts again, with the outbound's upstream sessions on http2.codec node (http2-wrapper
// over Node's core http2) instead of meshcar's own codec (the default, which the original file runs
// on): GET /upstreams counts the sessions per address from the pool's own books there.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./upstreams.test.js');
