// The Kubernetes CA's init container (config/kubernetes/base/ca.yaml, as kustomize renders it),
// its shell script run for real with /bin/sh and the built CLI on the PATH as `meshcar`, the
// pod's paths swapped for the test's: the CA folder, and the mounted bundle ConfigMap's folder.

import { execFile } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { podSpec, renderKustomization } from './kustomize.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli.js');

export interface InitRun { code: number; stdout: string; stderr: string }

/** The init container's command and script, from the rendered base. */
function initContainer(): { command: string[]; script: string } {
  const deployment = renderKustomization(join(ROOT, 'config/kubernetes/base')).find((o) => o.kind === 'Deployment' && o.metadata.name === 'meshcar-ca');
  const init = (podSpec(deployment!)!.initContainers as Array<{ name: string; command: string[]; args: string[] }>).find((c) => c.name === 'ca-init');
  if (init === undefined) throw new Error('no ca-init container in the rendered meshcar-ca Deployment');
  return { command: init.command, script: init.args.join('\n') };
}

/**
 * Runs it with `caDir` for /var/lib/meshcar/ca and `bundleDir` for the ConfigMap's mount
 * (/etc/meshcar-bundle; a folder that does not exist is a ConfigMap not made yet); `bin` gets
 * the `meshcar` shim.
 */
export async function runCaInitContainer(caDir: string, bundleDir: string, bin: string): Promise<InitRun> {
  const { command, script } = initContainer();
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'meshcar'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
  await chmod(join(bin, 'meshcar'), 0o755);
  const swapped = script.replaceAll('/var/lib/meshcar/ca', caDir).replaceAll('/etc/meshcar-bundle', bundleDir);
  return new Promise((resolve) => {
    execFile(command[0]!, [...command.slice(1), swapped], { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
