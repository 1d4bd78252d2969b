// A call to the CA that fails because this process is at its open-files limit (EMFILE: a
// container's nofile, or descriptors held by callers) names that limit, not the CA: "the CA at
// URL is unreachable" sent the reader to a CA that runs. A child process lowers its own soft
// limit to the descriptors it holds (prlimit on itself), calls the CA once, then raises it.

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const LOADER = new URL('../helpers/ts-loader.mjs', import.meta.url).pathname;
const EXCHANGE = new URL('../../src/identity/ca-exchange.ts', import.meta.url).href;

const CHILD = `
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { pino } from 'pino';
import { caExchange } from ${JSON.stringify(EXCHANGE)};
const url = 'https://127.0.0.1:9';
const options = { url, trustDomain: 'mesh.test', bundlePem: '', logger: pino({ level: 'silent' }) };
// (the CA client is loaded and the prlimit command ran once already: at the limit nothing else needs a descriptor but the call)
execFileSync('prlimit', ['--pid', String(process.pid), '--nofile=4096:']);
// the limit bounds the number a new descriptor gets, the lowest free one: set to it, nothing opens
// (less the one readdirSync held to list them, closed by now)
const open = new Set(readdirSync('/proc/self/fd').filter((fd) => { try { return !/\\/fd$/.test(readlinkSync('/proc/self/fd/' + fd)); } catch { return false; } }).map(Number));
let lowestFree = 0;
while (open.has(lowestFree)) lowestFree++;
execFileSync('prlimit', ['--pid', String(process.pid), \`--nofile=\${lowestFree}:\`]);
const outcome = await caExchange(options, 'spiffe://mesh.test/meshcar/ca', '', new URL('/v1/bundle', url), undefined, { trust: '' }).then(() => 'answered', (err) => err.code + ': ' + err.message);
process.stdout.write(outcome + '\\n');
`;

t.test('a CA call at the open-files limit names the limit, not the CA', async (t) => {
  const script = join(t.testdir(), 'child.mjs');
  await writeFile(script, CHILD);
  const { stdout } = await run(process.execPath, ['--import', LOADER, script], { cwd: new URL('../..', import.meta.url).pathname });
  t.match(stdout.trim(), /^ca_unreachable: could not reach the CA at https:\/\/127\.0\.0\.1:9: this process has no file descriptor left \(EMFILE\); the CA is not at fault: raise this sidecar's nofile \(ulimit -n\)/);
  t.notMatch(stdout, /is unreachable/, 'the CA is not blamed');
});
