// The SVID store under a crash: a child process saves a new set and SIGKILLs itself after
// each step of the save in turn (test/fixtures/disk-store-save.ts); after every kill, load()
// here must return the complete old set or the complete new set, never a mix and never
// nothing. Old and new differ in all three files (the new bundle trusts a second root), so a
// mix is visible even where it would validate.

import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { makePki } from '../helpers/pki.js';
import { transpileFixture } from '../helpers/transpiled-fixture.js';
import { initCaDirectory } from '../../src/ca/store.js';
import { caIssue } from '../../src/ca/commands.js';
import { CURRENT_LINK, DiskStore, STORE_FILES } from '../../src/identity/disk-store.js';
import { validateSvid, type Svid, type SvidMaterial } from '../../src/identity/svid.js';

const ID = 'spiffe://mesh.test/svc/orders';
const FIXTURE = new URL('../fixtures/disk-store-save.ts', import.meta.url).pathname;
const logger = pino({ level: 'silent' });

interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly steps: string[];
  readonly stderr: string;
}

/** Runs the fixture (transpiled once, see transpileFixture) in a new node process. */
function saveInChild(script: string, inputFile: string, crashAfter: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, inputFile, String(crashAfter)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, steps: stdout.split('\n').filter(Boolean), stderr }));
  });
}

const fingerprint = (s: SvidMaterial | undefined) => (s ? `${s.privateKeyPem}|${s.chainPem}|${s.bundlePem}` : 'nothing');

t.test('a save killed after any of its steps leaves the old set or the new one', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'meshcar-crash-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const script = await transpileFixture(FIXTURE, await mkdtemp(join(base, 'js-')));
  const pki = await makePki('mesh.test');
  const caDir = join(base, 'ca');
  await initCaDirectory(caDir, 'mesh.test', { force: false });
  const secondRoot = await readFile(join(caDir, 'bundle.pem'), 'utf8');

  // every new set trusts one more root than the old ones, as during a root rotation
  const newSet = async (): Promise<Svid> => {
    const issued = await pki.issue(ID);
    return validateSvid({ ...issued, bundlePem: issued.bundlePem + secondRoot }, ID);
  };

  const scenarios: Array<{ name: string; prepare(dir: string): Promise<Svid> }> = [
    {
      name: 'renewal over two stored generations',
      async prepare(dir) {
        const store = new DiskStore(dir, logger);
        await store.save(validateSvid(await pki.issue(ID), ID));
        const old = validateSvid(await pki.issue(ID), ID);
        await store.save(old);
        return old;
      },
    },
    {
      name: 'first save over the plain files of `meshcar ca issue --out` (an older layout)',
      async prepare(dir) {
        await caIssue(caDir, 'orders', dir, 3_600_000);
        const read = (name: string) => readFile(join(dir, name), 'utf8');
        const [privateKeyPem, chainPem, bundlePem] = await Promise.all([read(STORE_FILES.key), read(STORE_FILES.chain), read(STORE_FILES.bundle)]);
        return validateSvid({ privateKeyPem, chainPem, bundlePem }, ID);
      },
    },
  ];

  for (const scenario of scenarios) {
    t.test(scenario.name, async (t) => {
      const fresh = await newSet();
      const inputFile = join(base, `input-${scenarios.indexOf(scenario)}.json`);
      const material: SvidMaterial = { privateKeyPem: fresh.privateKeyPem, chainPem: fresh.chainPem, bundlePem: fresh.bundlePem };

      // a run to the end names the steps
      const dryDir = join(base, `dry-${scenarios.indexOf(scenario)}`);
      await scenario.prepare(dryDir);
      await writeFile(inputFile, JSON.stringify({ dir: dryDir, spiffeId: ID, material }));
      const dry = await saveInChild(script, inputFile, 0);
      t.equal(dry.code, 0, `the save completes: ${dry.stderr}`);
      t.ok(dry.steps.length >= 6, `steps observed: ${dry.steps.join(', ')}`);
      const switchAt = dry.steps.indexOf(`switched ${CURRENT_LINK} to ${/gen-\d+/.exec(dry.steps[0] ?? '')?.[0]}`);
      t.not(switchAt, -1, 'one step switches current to the new generation');

      // Each step crashes a save in a folder of its own, so the steps run side by side (a few
      // at a time: most of a step is waiting for a child process or an fsync); the outcomes
      // are checked in step order below.
      const crashAt = async (step: number) => {
        const dir = join(base, `s${scenarios.indexOf(scenario)}-${step}`);
        const old = await scenario.prepare(dir);
        const stepInput = join(base, `input-${scenarios.indexOf(scenario)}-${step}.json`);
        await writeFile(stepInput, JSON.stringify({ dir, spiffeId: ID, material }));
        const child = await saveInChild(script, stepInput, step);
        const loaded = await new DiskStore(dir, logger).load(ID);
        // the next save clears the debris of the crashed one
        const next = await newSet();
        await new DiskStore(dir, logger).save(next);
        const reloaded = await new DiskStore(dir, logger).load(ID);
        const entries = await readdir(dir);
        return { step, old, child, loaded, next, reloaded, entries };
      };
      const steps = Array.from({ length: dry.steps.length }, (_, i) => i + 1);
      const outcomes: Array<Awaited<ReturnType<typeof crashAt>>> = [];
      const workers = Array.from({ length: 4 }, async () => {
        for (let step = steps.shift(); step !== undefined; step = steps.shift()) outcomes[step - 1] = await crashAt(step);
      });
      await Promise.all(workers);

      for (const { step, old, child, loaded, next, reloaded, entries } of outcomes) {
        const after = child.steps.at(-1);
        t.equal(child.signal, 'SIGKILL', `killed after step ${step} (${after})`);
        t.equal(after, dry.steps[step - 1], 'at the step the dry run named');

        t.ok(
          fingerprint(loaded) === fingerprint(old) || fingerprint(loaded) === fingerprint(fresh),
          `after "${after}": the old set or the new set, whole`,
        );
        t.ok(loaded, `after "${after}": an old set existed, so never nothing`);
        // Before the switch nothing points at the new set. After it, plain files of an older
        // layout still win until the first of them becomes a link: the old set, whole, which
        // the mix check above covers.
        if (step - 1 < switchAt) t.equal(fingerprint(loaded), fingerprint(old), `after "${after}": still the old set`);
        if (step === dry.steps.length) t.equal(fingerprint(loaded), fingerprint(fresh), 'after the last step: the new set');

        t.equal(reloaded?.serialHex, next.serialHex, 'a later save wins');
        const top: readonly string[] = [...Object.values(STORE_FILES), CURRENT_LINK];
        const left = entries.filter((e) => !top.includes(e));
        t.ok(left.length <= 2 && left.every((e) => /^gen-\d+$/.test(e)), `no debris left: ${left.join(', ')}`);
      }
    });
  }
});
