// The Ajv instances of one spec: parameters (strings from the URL and headers, coerced to the
// schema's types) and bodies (JSON as sent, no coercion). OpenAPI 3.1 schemas are JSON Schema
// 2020-12; 3.0 ones are close to draft-07 plus `nullable`, which Ajv knows. Unknown keywords
// (example, xml, discriminator...) are annotations here, so strict mode is off.

import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { specRegExp } from './linear-regexps.js';
import { linearUniqueItems } from './unique-items.js';
import { isBase64 } from './byte-format.js';
import { isUrl } from './url-format.js';
import { isJsonPointer, isRelativeJsonPointer } from './pointer-formats.js';
import { int64Keyword } from './int64-range.js';

export interface SchemaCompilers {
  readonly params: Ajv;
  readonly body: Ajv;
  /** The request views of the spec's schemas, by schema (request-view.ts): a shared schema is copied once. */
  readonly requestViews: WeakMap<object, unknown>;
}

// ajv-formats is CommonJS: its function is the default export's default under NodeNext
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

export function compilersFor(openapiVersion: string): SchemaCompilers {
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
    linearUniqueItems(ajv); // Ajv's compares every pair of items (unique-items.ts)
    ajv.addKeyword(int64Keyword); // ajv-formats' int64 only tests integer-ness
    return ajv;
  };
  return { params: make('array'), body: make(false), requestViews: new WeakMap() };
}
