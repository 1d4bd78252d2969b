// Test helper: turns a TypeScript fixture and the repository files it imports into plain
// JavaScript in a temp directory, so a test that spawns it dozens of times (to kill each child
// at a different point) pays a bare `node` start per child instead of a TypeScript loader's
// (seconds each on a busy machine). Type-stripping only: the type check is tsc's job.

import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Writes `fixture` (a path inside the repository) and its relative imports as .js under outDir; returns the fixture's .js path. */
export async function transpileFixture(fixture: string, outDir: string): Promise<string> {
  // packages resolve from the repository's node_modules, as they do for the TypeScript source
  await symlink(join(REPO, 'node_modules'), join(outDir, 'node_modules'));
  const seen = new Set<string>();
  const pending = [resolve(fixture)];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = await readFile(file, 'utf8');
    // esbuild, as test/helpers/ts-hooks.mjs: loading TypeScript's compiler to strip types cost
    // ~1.5 s of CPU per test that spawns a fixture
    const { code: outputText } = await transform(source, { loader: 'ts', format: 'esm', target: 'node20', sourcefile: file, tsconfigRaw: { compilerOptions: { useDefineForClassFields: true } } });
    const out = join(outDir, relative(REPO, file)).replace(/\.ts$/, '.js');
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, outputText);
    // NodeNext imports name the .js that tsc will emit; the source beside it is the .ts
    // (static, side-effect and dynamic imports with a literal relative specifier)
    for (const match of outputText.matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
      pending.push(resolve(dirname(file), `${match[1]}.ts`));
    }
  }
  return join(outDir, relative(REPO, resolve(fixture))).replace(/\.ts$/, '.js');
}
