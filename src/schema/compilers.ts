// The Ajv instances of one spec: parameters (strings from the URL and headers, coerced to the
// schema's types) and bodies (JSON as sent, no coercion). OpenAPI 3.1 schemas are JSON Schema
// 2020-12; 3.0 ones are close to draft-07 plus `nullable`, which Ajv knows. Unknown keywords
// (example, xml, discriminator...) are annotations here, so strict mode is off.

import { createRequire } from 'node:module';
import type { Ajv } from 'ajv';
import { specRegExp } from './linear-regexps.js';
import { linearUniqueItems } from './unique-items.js';
import { isBase64 } from './byte-format.js';
import { isUrl } from './url-format.js';
import { isJsonPointer, isRelativeJsonPointer } from './pointer-formats.js';
import { boundFormatLengths } from './format-bounds.js';
import { int64Keyword } from './int64-range.js';

export interface SchemaCompilers {
  readonly params: Ajv;
  readonly body: Ajv;
  /** The request views of the spec's schemas, by schema (request-view.ts): a shared schema is copied once. */
  readonly requestViews: WeakMap<object, unknown>;
}

// Ajv and ajv-formats (CommonJS) are loaded with require when the first spec compiles, not
// imported: Node's ES module loader keeps a module that failed to load, so one load that met
// the open-files limit (EMFILE, a reload at the limit) failed every later reload naming a spec
// until a restart; a require that failed is tried afresh the next time. (This module itself is
// imported with the sidecar, guards.ts: none of it is left to a later load.)
const requireCjs = createRequire(import.meta.url);
// Resolved now (their package.json files read, no module loaded): Node's CommonJS loader keeps a
// package.json it could not open as one that is not there, and a require at the limit that met
// one failed every later require with "Cannot find module 'ajv-formats'" until a restart. Ajv's
// own dependencies too, from its folder. A package missing here is told at the first compile.
try {
  requireCjs.resolve('ajv-formats');
  requireCjs.resolve('ajv/dist/2020.js');
  const fromAjv = createRequire(requireCjs.resolve('ajv'));
  for (const name of ['fast-deep-equal', 'json-schema-traverse', 'fast-uri', 'require-from-string']) fromAjv.resolve(name);
} catch {
  // the first compile's require says what is missing
}

interface AjvPackages {
  readonly Ajv: typeof import('ajv').Ajv;
  readonly Ajv2020: typeof import('ajv/dist/2020.js').Ajv2020;
  readonly addFormats: (ajv: Ajv) => Ajv;
}
let packages: AjvPackages | undefined;

function ajvPackages(): AjvPackages {
  if (packages !== undefined) return packages;
  // ajv-formats' function is its module.exports (and its `default`)
  const formats = requireCjs('ajv-formats') as { default?: unknown };
  packages = {
    Ajv: (requireCjs('ajv') as typeof import('ajv')).Ajv,
    Ajv2020: (requireCjs('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).Ajv2020,
    addFormats: (formats.default ?? formats) as (ajv: Ajv) => Ajv,
  };
  return packages;
}

export function compilersFor(openapiVersion: string): SchemaCompilers {
  const { Ajv, Ajv2020, addFormats } = ajvPackages();
  const make = (coerceTypes: boolean | 'array'): Ajv => {
    // patterns on the linear-time fallback (linear-regexps.ts). ownProperties: a value's own
    // properties only; without it a property named as one of Object.prototype's (`constructor`,
    // `toString`, `valueOf`) was read through the prototype: `required: [constructor]` held by
    // `{}`, and an optional `toString: {type: integer}` refused every body that left it out
    // passContext: each validation is told of the numbers as sent (int64-range.ts)
    const options = { strict: false, passContext: true, allErrors: false, coerceTypes, validateFormats: true, ownProperties: true, code: { regExp: specRegExp } };
    const ajv = openapiVersion.startsWith('3.1') ? (new Ajv2020(options) as unknown as Ajv) : new Ajv(options);
    addFormats(ajv);
    // ajv-formats' byte passes any string with a line break, slowly (byte-format.ts)
    ajv.addFormat('byte', isBase64);
    // and its url took time square in the length: seconds for 64 KB (url-format.ts)
    ajv.addFormat('url', isUrl);
    // and its JSON pointers 250-350 ms per MiB on V8's linear-time engine (pointer-formats.ts)
    ajv.addFormat('json-pointer', isJsonPointer);
    ajv.addFormat('relative-json-pointer', isRelativeJsonPointer);
    // and date-time, regex, email, uri-reference... cost time as long as the value (format-bounds.ts)
    boundFormatLengths(ajv);
    linearUniqueItems(ajv); // Ajv's compares every pair of items (unique-items.ts)
    ajv.addKeyword(int64Keyword); // ajv-formats' int64 only tests integer-ness
    return ajv;
  };
  return { params: make('array'), body: make(false), requestViews: new WeakMap() };
}
