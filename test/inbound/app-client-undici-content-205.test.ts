// content-205.test.ts again, with the inbound's HTTP/1.1 app client on undici's pool
// (config `http1: {appClient: undici}`).

process.env.MESHCAR_TEST_APP_CLIENT = 'undici';
await import('./content-205.test.js');
