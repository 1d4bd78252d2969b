// Test helper for an e2e file whose tests share one mesh: our CA process (`meshcar ca serve`,
// helpers/mesh.ts) and the echo app behind the sidecars (helpers/apps.ts), started before the
// file's first test and stopped after its last. Each file keeps only what is particular to it:
// the sidecars it starts against them, and any path it adds to the app.

import type tap from 'tap';
import { startMeshCa, type MeshCa } from './mesh.js';
import { startEchoApp, type TestApp } from './apps.js';

export interface MeshFixture {
  readonly ca: MeshCa;
  readonly app: TestApp;
}

/**
 * The CA and echo app a test file's tests share: filled in by a `before` hook, so read them in
 * tests and later hooks, not when the file loads. Teardowns run last-added first, so a
 * teardown the file adds after this call (its sidecars) runs before the CA and app stop.
 * `options`: the CA's, as startMeshCa takes them (e.g. maxTtl).
 */
export function meshFixture(t: typeof tap, options: Parameters<typeof startMeshCa>[1] = {}): MeshFixture {
  const fixture = {} as { -readonly [K in keyof MeshFixture]: MeshFixture[K] };
  t.before(async () => {
    fixture.ca = await startMeshCa(t.testdir(), options);
    fixture.app = await startEchoApp();
  });
  t.teardown(async () => {
    await fixture.ca?.stop();
    await fixture.app?.close();
  });
  return fixture;
}
