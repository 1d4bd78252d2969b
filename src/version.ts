// The build's version, read once from package.json so metrics, --help and --version agree.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// src/version.ts and dist/version.js both sit one folder below package.json
export const VERSION: string = (require('../package.json') as { version: string }).version;
