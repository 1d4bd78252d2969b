// A buffered JSON request body held against its operation's compiled schema. Light on
// purpose (types only from Ajv): the request layers import this, while the spec loader and
// compiler (swagger-parser, Ajv) are loaded only when a spec is configured.

import type { ValidateFunction } from 'ajv';
import { describeAjvError, type Violation } from './violations.js';

/** Validates a buffered JSON body; undefined when it passes. */
export function checkJsonBody(validate: ValidateFunction, body: Buffer): Violation | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return { kind: 'body', message: `body: is not valid JSON (${(err as Error).message})` };
  }
  return validate(value) ? undefined : { kind: 'body', message: describeAjvError('body', validate.errors?.[0]) };
}
