// doctor's check of the OpenAPI specs a sidecar holds calls against (inbound.openapi and each
// upstream's openapi): each must load as the sidecar would load it (parsed, validated, $refs
// resolved, every operation compiled); a broken one is named with its file and JSON pointer.

import type { SidecarConfig } from '../config/sidecar-config.js';
import { describeError } from '../errors.js';
import { clip } from '../clip.js';
import { SpecError } from '../schema/spec-error.js';
import { fail, ok, warn, type CheckResult } from './result.js';

export async function checkSpecs(config: SidecarConfig): Promise<CheckResult[]> {
  const specs = [
    ...(config.inbound?.openapi ? [{ key: 'inbound.openapi', ...config.inbound.openapi }] : []),
    ...(config.outbound?.upstreams ?? []).flatMap((u) => (u.openapi ? [{ key: `outbound.upstreams.${u.name}.openapi`, ...u.openapi }] : [])),
  ];
  if (specs.length === 0) return [];
  const { CompiledSpec } = await import('../schema/spec.js');
  return Promise.all(
    specs.map(async ({ key, spec, mode }) => {
      const name = `openapi ${key}`;
      try {
        const loaded = await CompiledSpec.load(spec);
        const summary = `${spec}: ${loaded.operations.length} operations, ${mode} mode`;
        const { listed, total } = loaded.backtracking;
        if (total === 0) return ok(name, summary);
        const named = listed.slice(0, 5).map((p) => `#${p.pointer} /${clip(p.pattern, 80)}/`).join(', ');
        return warn(
          name,
          `${summary}; ${total} pattern${total === 1 ? '' : 's'} only the backtracking regex engine can run (a lookaround, a backreference, a unicode property, or a counted repetition past about {1,16}): ${named}${total > 5 ? `, and ${total - 5} more` : ''}`,
          'rewrite each without lookarounds or backreferences, or make sure it has no nested or overlapping repetition (such as (a+)+): a caller\'s input could otherwise hold the sidecar for seconds',
        );
      } catch (err) {
        // a pointer names a node to mend; without one the file itself is at fault (missing, a
        // folder, not YAML or JSON), and "that JSON pointer" would send the reader looking
        const pointer = err instanceof SpecError && err.pointer !== '';
        return fail(name, describeError(err), pointer ? `mend the spec at that JSON pointer (or point ${key}.spec at the right file), then reload` : `point ${key}.spec at a readable OpenAPI 3.0/3.1 file (YAML or JSON), or mend that file, then reload`);
      }
    }),
  );
}
