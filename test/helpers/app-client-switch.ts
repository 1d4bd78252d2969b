// Which HTTP/1.1 client a test's inbound uses toward its app (config `http1.appClient`):
// MESHCAR_TEST_APP_CLIENT, set by an app-client-undici-*.test.ts file before it imports a whole
// existing test file to re-run it on undici's pool; unset, the sidecar's default (meshcar).

export function defaultTestAppClient(): 'meshcar' | 'undici' | undefined {
  const value = process.env.MESHCAR_TEST_APP_CLIENT;
  return value === 'meshcar' || value === 'undici' ? value : undefined;
}
