// The version meshcar reports (CLI, meshcar_build_info) is the one in package.json.

import t from 'tap';
import { readFile } from 'node:fs/promises';
import { VERSION } from '../src/version.js';

t.test('VERSION comes from package.json', async (t) => {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(VERSION, pkg.version);
  t.match(VERSION, /^\d+\.\d+\.\d+/);
});
