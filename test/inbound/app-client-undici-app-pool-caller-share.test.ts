// app-pool-caller-share.test.ts again, with the inbound's HTTP/1.1 app client on undici's pool
// (config `http1: {appClient: undici}`): the per-caller share holds in front of undici's pool
// too (src/inbound/app-undici-pool.ts).

process.env.MESHCAR_TEST_APP_CLIENT = 'undici';
await import('./app-pool-caller-share.test.js');
