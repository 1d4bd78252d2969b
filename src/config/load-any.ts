// One entry for `meshcar check` and `meshcar doctor`: tell a CA config from a sidecar config by
// its keys, then check it as that kind, reading the file once (a pipe, /dev/stdin, is read once).

import { type CaConfig, validateCaConfig } from './ca-config.js';
import { type ConfigKind, detectConfigKind } from './config-kind.js';
import { configWarnings } from './config-warnings.js';
import { ConfigError, sortIssues, type ConfigIssue } from './issues.js';
import { checkReferencedFiles } from './referenced-files.js';
import { type SidecarConfig, validateSidecarConfig } from './sidecar-config.js';
import { readYamlSource } from './yaml-source.js';
import type { YamlValue } from './yaml-value.js';

export type AnyConfig = { readonly kind: 'ca'; readonly config: CaConfig } | { readonly kind: 'sidecar'; readonly config: SidecarConfig };

export { type ConfigKind, detectConfigKind } from './config-kind.js';

/**
 * Every issue in the file, sorted; empty when it is valid. Kind is 'sidecar' when the file cannot
 * be read. A valid file's referenced files (bundle, token, cert, key, CA folder) are checked too:
 * they must exist, be readable and hold what they should (unless `referencedFiles: false`:
 * `meshcar doctor` checks each file in the check it belongs to). `warnings`: lines about a valid
 * file that still deserves a change (config/config-warnings.ts).
 */
export async function checkConfigFile(file: string, options: { referencedFiles?: boolean } = {}): Promise<{ kind: ConfigKind; issues: ConfigIssue[]; warnings: string[]; config: AnyConfig | undefined }> {
  const { kind, issues, config, root } = await validate(file);
  if (config && root && issues.length === 0 && options.referencedFiles !== false) {
    await checkReferencedFiles(root, config);
    sortIssues(issues);
  }
  // what a valid file may run with but should not (the sidecar logs the same at start and reload)
  const warnings = config?.kind === 'sidecar' && issues.length === 0 ? configWarnings(config.config, file) : [];
  // the config as read, when valid: a caller reading the file again would find a pipe drained
  return { kind, issues, warnings, config: issues.length === 0 ? config : undefined };
}

/** Loads either kind of config; throws ConfigError listing every issue. */
export async function loadConfigFile(file: string): Promise<AnyConfig> {
  const result = await validate(file);
  if (!result.config || result.issues.length > 0) throw new ConfigError(result.issues);
  return result.config;
}

async function validate(file: string): Promise<{ kind: ConfigKind; issues: ConfigIssue[]; config: AnyConfig | undefined; root: YamlValue | undefined }> {
  const source = await readYamlSource(file);
  const kind = detectConfigKind(source.root);
  if (kind === 'ca') {
    const config = validateCaConfig(source);
    return { kind, issues: source.issues, config: config && { kind, config }, root: source.root };
  }
  const config = validateSidecarConfig(source);
  return { kind, issues: source.issues, config: config && { kind, config }, root: source.root };
}
