// app-speaks-h2c.test.ts again, with the inbound's HTTP/1.1 app client on undici's pool (config
// `http1: {appClient: undici}`) instead of meshcar's own (the default, which the original file
// runs on), so the selectable client keeps this file's coverage.

process.env.MESHCAR_TEST_APP_CLIENT = 'undici';
await import('./app-speaks-h2c.test.js');
