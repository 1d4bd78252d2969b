// early-answer-hang-up.test.ts again, with the inbound's HTTP/1.1 app client on undici's pool
// (config `http1: {appClient: undici}`) instead of meshcar's own (the default, which the
// original file runs on): undici lost the app's early answer to a failed write the same way.

process.env.MESHCAR_TEST_APP_CLIENT = 'undici';
await import('./early-answer-hang-up.test.js');
