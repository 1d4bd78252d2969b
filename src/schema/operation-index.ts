// The spec's operations by the base path each is served under, and the match of a request
// path to one. An operation is served under the base paths of its nearest `servers` (its own,
// else its path item's, else the document's: server-bases.ts), so each base path has a
// matcher of its own over the templates served there, and a path is matched under the
// longest base path it starts with first, then the shorter ones (the root last).

import type { CompiledOperation } from './operation.js';
import { PathMatcher, type PathMatch } from './path-matcher.js';

/** One operation and the base paths it is served under ('' for the root). */
export interface ServedOperation {
  readonly operation: CompiledOperation;
  readonly bases: readonly string[];
}

interface BaseMatchers {
  readonly base: string;
  readonly foldedBase: string;
  readonly operations: readonly CompiledOperation[];
  readonly matcher: PathMatcher<CompiledOperation>;
  readonly foldedMatcher: PathMatcher<CompiledOperation>;
}

export type BaseMatch = PathMatch<CompiledOperation> & { readonly base: string };

export class OperationIndex {
  /** Whether a template or a base path has a capital in its literal parts (only then can a path read otherwise without case). */
  readonly templatesHaveUpperCase: boolean;
  /** Longest base path first. */
  private readonly byBase: readonly BaseMatchers[];

  constructor(served: readonly ServedOperation[]) {
    const groups = new Map<string, CompiledOperation[]>();
    for (const { operation, bases } of served) {
      for (const base of bases) {
        const group = groups.get(base);
        if (group === undefined) groups.set(base, [operation]);
        else group.push(operation);
      }
    }
    const literal = (template: string) => template.replace(/\{[^}]*\}/g, '');
    this.templatesHaveUpperCase = [...groups].some(([base, ops]) => /[A-Z]/.test(base) || ops.some((op) => /[A-Z]/.test(literal(op.template))));
    this.byBase = [...groups]
      .sort(([a], [b]) => b.length - a.length)
      .map(([base, operations]) => {
        const matcher = new PathMatcher(operations.map((op) => ({ template: op.template, method: op.method, value: op })));
        // the templates as a case-insensitive app routes them (misreading): most specs write their
        // literal parts in lower case, and share the matcher (a second one costs ~150 ms at 20,000 operations)
        const foldedMatcher = this.templatesHaveUpperCase ? new PathMatcher(operations.map((op) => ({ template: op.template.toLowerCase(), method: op.method, value: op }))) : matcher;
        return { base, foldedBase: base.toLowerCase(), operations, matcher, foldedMatcher };
      });
  }

  /**
   * The operation of a canonical path under the base paths; HEAD falls back to GET (HTTP: HEAD
   * is GET without a body). `folded`: as an app that ignores case matches it (path, templates
   * and base paths in lower case).
   */
  match(method: string, canonical: string, folded: boolean): BaseMatch | undefined {
    // the base path is compared as the templates are (`/%761/orders` is under `/v1`)
    const path = folded ? canonical.toLowerCase() : canonical;
    for (const served of this.byBase) {
      const base = folded ? served.foldedBase : served.base;
      if (base !== '' && !(path.startsWith(base) && (path.length === base.length || path.charCodeAt(base.length) === 47) /* / */)) continue;
      const relative = path.length === base.length ? '/' : path.slice(base.length);
      // lower case, an escape's hex is no longer canonical: the folded matcher puts it back
      const find = (m: string) => (folded ? served.foldedMatcher.match(m, relative) : served.matcher.matchCanonical(m, relative));
      const match = find(method) ?? (method === 'HEAD' ? find('GET') : undefined);
      if (match !== undefined) return { ...match, base: served.base };
    }
    return undefined;
  }

  /** Every operation by the route its calls get: its template under each base path it is served under, longest base path first. */
  routes(): Array<{ readonly method: string; readonly route: string }> {
    return this.byBase.flatMap(({ base, operations }) => operations.map((op) => ({ method: op.method, route: base + op.template })));
  }
}
