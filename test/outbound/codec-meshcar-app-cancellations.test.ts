// app-cancellations.test.ts again, with the outbound's upstream sessions on http2.codec
// meshcar: its streams, cancelled when the app walks away, are released and not held against
// the endpoint either.

process.env.MESHCAR_TEST_H2_CODEC = 'meshcar';
await import('./app-cancellations.test.js');
