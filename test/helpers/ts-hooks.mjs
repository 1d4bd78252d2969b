// Module hooks that let Node 20 run the TypeScript tests and the sources they import as they
// are: a relative `./x.js` import from a .ts file finds `./x.ts` (NodeNext names the file tsc
// will emit), and a .ts file is loaded with its types stripped by esbuild (no type check: that
// is tsc's job in `make build`). Registered by ts-loader.mjs; runs on Node's hooks thread.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

// tsc's emit for this project's tsconfig (target ES2022): class fields are defined, not assigned
const TSCONFIG = { compilerOptions: { useDefineForClassFields: true } };

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
  const { code } = await transform(await readFile(path, 'utf8'), {
    loader: 'ts',
    format: 'esm',
    target: 'node20',
    sourcefile: path,
    sourcemap: 'inline', // stack traces and tap's failure locations point at the .ts lines
    tsconfigRaw: TSCONFIG,
  });
  return { format: 'module', source: code, shortCircuit: true };
}
