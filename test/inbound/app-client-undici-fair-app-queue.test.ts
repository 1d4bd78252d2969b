// fair-app-queue.test.ts again, with the inbound's HTTP/1.1 app client on undici's pool (config
// `http1: {appClient: undici}`): callers take turns in front of undici's own first-come queue
// too (src/inbound/app-undici-pool.ts).

process.env.MESHCAR_TEST_APP_CLIENT = 'undici';
await import('./fair-app-queue.test.js');
