// A key written at the wrong level, the mistake a newcomer makes with indentation: `authorize:`
// at the top instead of under inbound, an upstream straight under outbound (upstreams: left
// out), `app:` slipped under identity. `meshcar check` says where the key goes, on its one line,
// besides what is allowed where it stands; a typo keeps its "did you mean".

import t from 'tap';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMeshcar } from '../helpers/process.js';

const HEAD = 'service: orders\ntrustDomain: mesh.local\n';
const FILES = 'identity:\n  files: {cert: a.crt, key: a.key, bundle: b.pem}\n';

/** `meshcar check` of `yaml`: its exit status and its stdout and stderr lines. */
async function check(t: Tap.Test, yaml: string): Promise<{ status: number | null; lines: string[] }> {
  const dir = t.testdir();
  await writeFile(join(dir, 'c.yaml'), yaml);
  const proc = startMeshcar(['check', '--config', 'c.yaml'], { cwd: dir });
  const status = await proc.exited();
  return { status, lines: [...proc.lines.map((line) => String(line.msg)), ...proc.stderr] };
}

function lineOf(lines: string[], path: string): string {
  return lines.find((line) => line.startsWith(`c.yaml:`) && line.includes(` ${path}: `)) ?? `(no line for ${path} in: ${lines.join(' | ')})`;
}

t.test('authorize at the top: it goes under inbound', async (t) => {
  const { status, lines } = await check(t, `${HEAD}${FILES}inbound:\n  listen: 127.0.0.1:15443\n  app: http://127.0.0.1:8080\nauthorize:\n  - from: [spiffe://mesh.local/svc/frontend]\n`);
  t.equal(status, 1);
  t.match(lineOf(lines, 'authorize'), /^c\.yaml:8:1: authorize: unknown key here: it goes under inbound \(inbound\.authorize\); allowed here: service, /);
});

t.test('an upstream straight under outbound: it goes under outbound.upstreams', async (t) => {
  const { status, lines } = await check(t, `${HEAD}${FILES}outbound:\n  listen: 127.0.0.1:15001\n  orders:\n    endpoints: [127.0.0.1:15443]\n    identity: spiffe://mesh.local/svc/orders\n`);
  t.equal(status, 1);
  t.match(lineOf(lines, 'outbound.orders'), /unknown key here: an upstream goes under outbound\.upstreams \(outbound\.upstreams\.orders\); allowed here: listen, upstreams, dnsRefresh$/);
});

t.test('app slipped under identity: it goes under inbound', async (t) => {
  const { status, lines } = await check(t, `${HEAD}identity:\n  files: {cert: a.crt, key: a.key, bundle: b.pem}\n  app: http://127.0.0.1:8080\ninbound:\n  listen: 127.0.0.1:15443\n`);
  t.equal(status, 1);
  t.match(lineOf(lines, 'identity.app'), /unknown key here: it goes under inbound \(inbound\.app\); allowed here: ca, files/);
});

t.test('a key at home in several places names each', async (t) => {
  const { lines } = await check(t, `${HEAD}${FILES}listen: 127.0.0.1:15443\nendpoints: [127.0.0.1:1]\nlevel: debug\nmaxPipelined: 8\n`);
  t.match(lineOf(lines, 'listen'), /unknown key here: it goes under inbound, outbound or admin; allowed here:/);
  t.match(lineOf(lines, 'endpoints'), /unknown key here: it goes under outbound\.upstreams\.<name> \(outbound\.upstreams\.<name>\.endpoints\); allowed here:/);
  t.match(lineOf(lines, 'level'), /unknown key here: it goes under log \(log\.level\); allowed here:/);
  t.match(lineOf(lines, 'maxPipelined'), /unknown key here: it goes under inbound\.limits \(inbound\.limits\.maxPipelined\); allowed here:/);
});

t.test('a typo is told its spelling, a key known nowhere as before', async (t) => {
  const { lines } = await check(t, `${HEAD}${FILES}outbound:\n  listen: 127.0.0.1:15001\n  upstreams: {}\nadmn: {listen: 127.0.0.1:1}\nfrobnicate: 1\n`);
  t.match(lineOf(lines, 'admn'), /: admn: unknown key \(did you mean admin\?\); allowed here:/);
  t.match(lineOf(lines, 'frobnicate'), /: frobnicate: unknown key; allowed here:/);
});

t.test('every map a sidecar reader takes is in the sections looked up', async (t) => {
  // a reader given a list of its own would leave its keys out of the hints
  const folder = new URL('../../src/config/', import.meta.url).pathname;
  const sections = await readFile(join(folder, 'sidecar-sections.ts'), 'utf8');
  const files = (await readdir(folder)).filter((file) => file.endsWith('.ts') && file !== 'ca-config.ts');
  let maps = 0;
  for (const file of files) {
    // value.map() is a free-form map (the upstreams by name); a list written in place is refused
    for (const call of (await readFile(join(folder, file), 'utf8')).matchAll(/\bvalue\.map\((\[[^\]]*\]|[A-Z][A-Z0-9_]*)\)/g)) {
      maps++;
      const name = call[1] as string;
      t.match(name, /^[A-Z0-9_]+_KEYS$|^KEYS$/, `${file}: map(${name}) names a list of keys`);
      t.match(sections, new RegExp(`: ${name},`), `${file}: ${name} is in SECTIONS`);
    }
  }
  t.ok(maps >= 20, `${maps} maps`);
});
