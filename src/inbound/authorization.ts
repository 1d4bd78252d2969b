// Who may call this workload: the `inbound.authorize` rules compiled once into sets and
// prefix lists. A caller's identity is fixed for the life of its connection, so the rules that
// name it are picked out once per caller (a Grant); a request then checks only method and path.

import type { AuthorizeRule } from '../config/inbound-config.js';

/** What one caller may do, under one version of the policy. */
export interface Grant {
  allows(method: string, path: string): boolean;
}

/** Any method, any path: no rules configured (every identity of the trust domain may call). */
const ALLOW_ALL: Grant = Object.freeze({ allows: () => true });
/** No rule names this caller. */
const DENY_ALL: Grant = Object.freeze({ allows: () => false });

/** A pattern list split into exact values and prefixes, so matching is a Set lookup and a short scan. */
interface CompiledPatterns {
  readonly exact: ReadonlySet<string>;
  readonly prefixes: readonly string[];
}

function compilePatterns(patterns: readonly string[], wildcardSuffix: string): CompiledPatterns {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const pattern of patterns) {
    if (pattern.endsWith(wildcardSuffix)) prefixes.push(pattern.slice(0, -1)); // keep the '/' of '/*'
    else exact.add(pattern);
  }
  return { exact, prefixes };
}

function matches(patterns: CompiledPatterns, value: string): boolean {
  if (patterns.exact.has(value)) return true;
  const prefixes = patterns.prefixes;
  for (let i = 0; i < prefixes.length; i++) if (value.startsWith(prefixes[i] as string)) return true;
  return false;
}

interface CompiledRule {
  readonly from: CompiledPatterns;
  /** undefined: any method. */
  readonly methods: ReadonlySet<string> | undefined;
  /** undefined: any path. */
  readonly paths: CompiledPatterns | undefined;
}

/** The rules that name one caller: a request passes when one of them allows method and path. */
class RuleGrant implements Grant {
  constructor(private readonly rules: readonly CompiledRule[]) {}

  allows(method: string, path: string): boolean {
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i] as CompiledRule;
      if (rule.methods !== undefined && !rule.methods.has(method)) continue;
      if (rule.paths !== undefined && !matches(rule.paths, path)) continue;
      return true;
    }
    return false;
  }
}

/**
 * One immutable version of the authorization rules. Replacing the policy (live reload) is
 * one assignment; callers notice by identity comparison and pick their grant again.
 */
export class AuthorizationPolicy {
  private readonly rules: readonly CompiledRule[] | undefined;

  private constructor(rules: readonly AuthorizeRule[] | undefined) {
    this.rules = rules?.map((rule) => ({
      // identities: exact, or `spiffe://td/svc/*` meaning every ID under `spiffe://td/svc/`
      from: compilePatterns(rule.from, '/*'),
      methods: rule.methods ? new Set(rule.methods) : undefined,
      // paths: exact, or ending in `*` meaning every path starting with what precedes it
      paths: rule.paths ? compilePatterns(rule.paths, '*') : undefined,
    }));
  }

  /** `undefined` rules: any identity of the trust domain may call anything. */
  static compile(rules: readonly AuthorizeRule[] | undefined): AuthorizationPolicy {
    return new AuthorizationPolicy(rules);
  }

  /** The grant of a caller with this SPIFFE ID (already verified to be of our trust domain). */
  grantFor(spiffeId: string): Grant {
    if (this.rules === undefined) return ALLOW_ALL;
    const named = this.rules.filter((rule) => matches(rule.from, spiffeId));
    if (named.length === 0) return DENY_ALL;
    // a rule naming any method and any path makes the others irrelevant
    if (named.some((rule) => rule.methods === undefined && rule.paths === undefined)) return ALLOW_ALL;
    return new RuleGrant(named);
  }
}
