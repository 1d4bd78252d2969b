// A reload after only an OpenAPI spec file changed on disk (the config file as it was): every
// spec is read again on each reload and the new one is in force, and the answer says so, under
// the key that names the file (`inbound.openapi.spec`, `outbound.upstreams.NAME.openapi.spec`),
// as a change of that key itself would be named. Before: `applied: []`, although the new spec
// was applied. A reload with the specs unchanged still answers `applied: []`.

import t from 'tap';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { request } from '../helpers/apps.js';
import { httpPost, startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';

const SPEC = resolve('config/orders.openapi.yaml');
/** PATCH on /orders/{id}, which the orders spec lacks. */
const PATCH_OPERATION = '    patch:\n      summary: Change an order\n      responses:\n        "200": {description: changed}\n    delete:\n';

let ca: MeshCa;
let sidecar: RunningSidecar;
let inboundSpec: string;
let upstreamSpec: string;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
  inboundSpec = join(ca.dir, 'inbound.openapi.yaml');
  upstreamSpec = join(ca.dir, 'orders.openapi.yaml');
  await copyFile(SPEC, inboundSpec);
  await copyFile(SPEC, upstreamSpec);
  // nothing listens behind either: the outbound's enforcing check answers before the call leaves
  sidecar = await startSidecar(ca, {
    service: 'frontend',
    inbound: { app: 'http://127.0.0.1:9', openapi: `{spec: ${inboundSpec}, mode: shadow}` },
    upstreams: [{ name: 'orders', endpoints: ['127.0.0.1:9'], identity: 'spiffe://mesh.local/svc/orders', openapi: `{spec: ${upstreamSpec}, mode: enforce}` }],
  });
});
t.teardown(async () => {
  await sidecar?.stop();
  await ca?.stop();
});

async function addPatch(file: string): Promise<void> {
  const before = await readFile(file, 'utf8');
  if (!before.includes('    delete:\n')) throw new Error(`${file}: no delete operation to put PATCH before`);
  await writeFile(file, before.replace('    delete:\n', PATCH_OPERATION));
}

async function patchRefusal(): Promise<string | undefined> {
  const res = await request(sidecar.outboundPort, { method: 'PATCH', path: '/orders/7', headers: { host: 'orders' } });
  return res.headers['x-meshcar-error'] as string | undefined;
}

t.test('an upstream spec file changed: applied names its key, and the new spec is in force', async (t) => {
  t.equal(await patchRefusal(), 'undocumented_operation', 'PATCH is refused before the spec changes');
  await addPatch(upstreamSpec);
  const reload = await httpPost(sidecar.adminPort, '/reload');
  t.equal(reload.status, 200, reload.body);
  t.same(JSON.parse(reload.body), { applied: ['outbound.upstreams.orders.openapi.spec'], restartRequired: [] }, 'was: applied: []');
  t.not(await patchRefusal(), 'undocumented_operation', 'PATCH now leaves (and fails further on: nothing listens)');
});

t.test('the inbound spec file changed: applied names its key', async (t) => {
  await addPatch(inboundSpec);
  const reload = await httpPost(sidecar.adminPort, '/reload');
  t.equal(reload.status, 200, reload.body);
  t.same(JSON.parse(reload.body), { applied: ['inbound.openapi.spec'], restartRequired: [] }, 'was: applied: []');
});

t.test('the spec file changed along with its mode: both keys', async (t) => {
  const config = await readFile(sidecar.configFile, 'utf8');
  await writeFile(sidecar.configFile, config.replace(`{spec: ${inboundSpec}, mode: shadow}`, `{spec: ${inboundSpec}, mode: enforce}`));
  await writeFile(inboundSpec, await readFile(SPEC, 'utf8'));
  const reload = await httpPost(sidecar.adminPort, '/reload');
  t.equal(reload.status, 200, reload.body);
  t.same(JSON.parse(reload.body).applied, ['inbound.openapi.mode', 'inbound.openapi.spec']);
});

t.test('nothing changed: applied is empty', async (t) => {
  const reload = await httpPost(sidecar.adminPort, '/reload');
  t.equal(reload.status, 200, reload.body);
  t.same(JSON.parse(reload.body), { applied: [], restartRequired: [] });
});
