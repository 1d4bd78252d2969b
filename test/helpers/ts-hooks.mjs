// Module hooks that let Node 20 run the TypeScript tests and the sources they import as they
// are: a relative `./x.js` import from a .ts file finds `./x.ts` (NodeNext names the file tsc
// will emit), and a .ts file is loaded with its types stripped by esbuild (no type check: that
// is tsc's job in `make build`). Registered by ts-loader.mjs; runs on Node's hooks thread.
// What esbuild makes of a file is kept in node_modules/.cache/meshcar-ts, by the hash of the
// file's path and text: `make test`'s ~100 processes load mostly the same src files, and each
// transformed them again (111 esbuild processes, ~48 s of CPU of a ~1,100 s run, measured); a
// process that finds all it loads there never starts esbuild at all.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// tsc's emit for this project's tsconfig (target ES2022): class fields are defined, not assigned
const TSCONFIG = { compilerOptions: { useDefineForClassFields: true } };
const OPTIONS = { loader: 'ts', format: 'esm', target: 'node20', sourcemap: 'inline', tsconfigRaw: TSCONFIG };
const CACHE = fileURLToPath(new URL('../../node_modules/.cache/meshcar-ts/', import.meta.url));
// the esbuild that made an entry is part of its key too (npm ci may bring another)
const ESBUILD_VERSION = JSON.parse(readFileSync(new URL('../../node_modules/esbuild/package.json', import.meta.url), 'utf8')).version;
let esbuild; // loaded on the first miss
let cacheReady;

export async function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    try {
      return await nextResolve(`${specifier.slice(0, -3)}.ts`, context);
    } catch {
      // a real .js beside the TypeScript (dist/, a fixture): resolved as written below
    }
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const text = await readFile(path, 'utf8');
  // the options and esbuild's version are part of the key: a change to either makes every entry stale
  const key = createHash('sha256').update(ESBUILD_VERSION).update(JSON.stringify(OPTIONS)).update('\0').update(path).update('\0').update(text).digest('hex');
  const cached = join(CACHE, `${key}.js`);
  try {
    return { format: 'module', source: await readFile(cached, 'utf8'), shortCircuit: true };
  } catch {
    // not made yet
  }
  esbuild ??= await import('esbuild');
  const { code } = await esbuild.transform(text, { ...OPTIONS, sourcefile: path }); // sourcemap: stack traces and tap's failure locations point at the .ts lines
  try {
    cacheReady ??= mkdir(CACHE, { recursive: true });
    await cacheReady;
    // written aside and renamed: processes loading the same file side by side never read half of it
    const aside = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    await writeFile(aside, code);
    await rename(aside, cached);
  } catch {
    // a cache that cannot be written (read-only tree) only costs the transform next time
  }
  return { format: 'module', source: code, shortCircuit: true };
}
