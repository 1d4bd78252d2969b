// close-delimited-reset.test.ts again, with the inbound's HTTP/1.1 app client on undici's pool
// (config `http1: {appClient: undici}`), where the reset was taken for the end of the answer.

process.env.MESHCAR_TEST_APP_CLIENT = 'undici';
await import('./close-delimited-reset.test.js');
