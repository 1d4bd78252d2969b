// Finds the operation of a request: method + path against the spec's path templates. Templates
// without parameters are one Map lookup; the others are regular expressions tried most
// literal first (OpenAPI: `/orders/mine` wins over `/orders/{id}`). Built once per spec.

export interface Template<T> {
  readonly template: string;
  readonly method: string;
  readonly value: T;
}

export interface PathMatch<T> {
  readonly value: T;
  /** Path parameters by name, percent-decoded; undefined when the template has none. */
  readonly params: Record<string, string> | undefined;
}

interface Pattern<T> {
  readonly regex: RegExp;
  readonly names: readonly string[];
  readonly value: T;
  readonly literalLength: number;
}

const PARAM = /\{([^}/]+)\}/g;

export class PathMatcher<T> {
  /** path → method → value, for templates without parameters. */
  private readonly exact = new Map<string, Map<string, T>>();
  /** method → patterns, most literal first. */
  private readonly patterns = new Map<string, Pattern<T>[]>();

  constructor(templates: Iterable<Template<T>>) {
    for (const { template, method, value } of templates) {
      const names: string[] = [];
      let source = '';
      let last = 0;
      for (const m of template.matchAll(PARAM)) {
        source += escape(template.slice(last, m.index));
        source += '([^/]+)';
        names.push(m[1] as string);
        last = (m.index as number) + m[0].length;
      }
      if (names.length === 0) {
        let methods = this.exact.get(template);
        if (!methods) this.exact.set(template, (methods = new Map()));
        methods.set(method, value);
        continue;
      }
      source += escape(template.slice(last));
      const list = this.patterns.get(method) ?? [];
      list.push({ regex: new RegExp(`^${source}$`), names, value, literalLength: template.replace(PARAM, '').length });
      this.patterns.set(method, list);
    }
    for (const list of this.patterns.values()) list.sort((a, b) => b.literalLength - a.literalLength);
  }

  match(method: string, path: string): PathMatch<T> | undefined {
    const exact = this.exact.get(path)?.get(method);
    if (exact !== undefined) return { value: exact, params: undefined };
    const list = this.patterns.get(method);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) {
      const pattern = list[i] as Pattern<T>;
      const m = pattern.regex.exec(path);
      if (m === null) continue;
      const params: Record<string, string> = {};
      for (let j = 0; j < pattern.names.length; j++) params[pattern.names[j] as string] = decode(m[j + 1] as string);
      return { value: pattern.value, params };
    }
    return undefined;
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
