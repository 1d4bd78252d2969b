// Test helper: a sidecar config written from text into a test folder and loaded as `meshcar
// run` loads it; or its issues, formatted as `meshcar check` prints them (file base name).

import type t from 'tap';
import { basename, join } from 'node:path';
import { ConfigError, formatIssue } from '../../src/config/issues.js';
import { loadSidecarConfig, type SidecarConfig } from '../../src/config/sidecar-config.js';

/** The smallest sidecar config: identity from files (never read by a load) and an inbound side; keys go after it. */
export const BASE_CONFIG = `service: orders
trustDomain: mesh.local
identity:
  files: {cert: c.pem, key: k.pem, bundle: b.pem}
inbound:
  listen: 127.0.0.1:15443
  app: http://127.0.0.1:8080
`;

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

export function loadConfigText(t: TapTest, text: string): Promise<SidecarConfig> {
  return loadSidecarConfig(join(t.testdir({ 'c.yaml': text }), 'c.yaml'));
}

/** The issues of an invalid config; fails the test when the config loads. */
export async function configIssues(t: TapTest, text: string): Promise<string[]> {
  const err = await loadConfigText(t, text).then(
    () => t.fail('expected a ConfigError'),
    (e: unknown) => e,
  );
  if (!(err instanceof ConfigError)) throw err;
  return err.issues.map((issue) => formatIssue({ ...issue, file: basename(issue.file) }));
}
