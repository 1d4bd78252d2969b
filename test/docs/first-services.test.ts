// docs/first-services.md runs as written. Its own ```yaml and ```sh blocks are the script: read
// from the file, the doc's ports moved to free ones, `npx meshcar` run as `node dist/cli.js`
// (npx costs about a second a call), in a temporary folder standing for the meshcar folder
// (certs/ made there as make ca and make token make it), under bash with job control as in a
// terminal, so `kill %3 %4` means what it means to a reader. Checked against what the text says
// you will see: the app's answer, /identity, /endpoints, the metric, doctor's lines, the reload's
// answer as quoted, the allowed and refused calls, SIGHUP by the command the text gives, and the
// stop: each sidecar logs `stopped` and exits 0. The app serves a folder of its own: the CA's
// keys in certs/ are not reachable through the mesh. Step 1 names every program the steps run
// that Node, make and a shell do not bring (make build installs neither curl nor python3).

import t from 'tap';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist/cli.js');
const DOC = join(ROOT, 'docs/first-services.md');
// the doc's ports: CA, app, orders inbound, frontend outbound, orders admin, frontend admin
const DOC_PORTS = ['8443', '8080', '15443', '15001', '15000', '15100'];

function node(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => execFile(process.execPath, [CLI, ...args], { cwd }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr })));
}

/** Each command line's output and exit code, by the line as the doc writes it. */
type Outputs = Map<string, { out: string; code: number }>;

t.test('the walk-through, steps 2 to 6, as written', async (t) => {
  const doc = await readFile(DOC, 'utf8');
  const cwd = t.testdir();
  const ports = new Map<string, string>();
  for (const port of DOC_PORTS) {
    let free = String(await freePort());
    while ([...ports.values()].includes(free)) free = String(await freePort());
    ports.set(port, free);
  }
  const moved = (text: string) =>
    text
      .replace(new RegExp(`\\b(${DOC_PORTS.join('|')})\\b`, 'g'), (port) => ports.get(port) as string)
      .replaceAll('npx meshcar', `node ${CLI}`)
      .replaceAll('/tmp/orders-app', join(cwd, 'orders-app'));

  // step 2: what make ca and make token run (test/makefile.test.ts runs the targets themselves)
  t.equal((await node(['ca', 'init', '--dir', 'certs/ca', '--trust-domain', 'mesh.local'], cwd)).code, 0);
  for (const service of ['orders', 'frontend']) t.equal((await node(['ca', 'token', '--dir', 'certs/ca', '--service', service, '--ttl', '8h', '--out', `certs/${service}.token`], cwd)).code, 0);
  await mkdir(join(cwd, 'config'));
  await writeFile(join(cwd, 'config/example-ca.yaml'), moved(await readFile(join(ROOT, 'config/example-ca.yaml'), 'utf8')));

  const from = doc.slice(doc.indexOf('Start the CA'));
  const blocks = [...from.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ kind: m[1] as string, text: m[2] as string }));
  const yaml = blocks.filter((b) => b.kind === 'yaml').map((b) => b.text);
  const sh = blocks.filter((b) => b.kind === 'sh').map((b) => b.text);
  t.equal(yaml.length, 3, 'orders.yaml, frontend.yaml and the policy');
  t.equal(sh.length, 6, 'start the CA; check and start; the call; see it; reload; stop');
  await writeFile(join(cwd, 'orders.yaml'), moved(yaml[0] as string));
  await writeFile(join(cwd, 'frontend.yaml'), moved(yaml[1] as string));
  await copyFile(join(cwd, 'orders.yaml'), join(cwd, 'orders.before'));
  // step 5's edit, "to the end of orders.yaml": appended as written, as `cat >>` or an editor's
  // last line would (inbound: must be the file's last section for that to land under it)
  t.match(doc, /Add to the end of `orders\.yaml`/, 'step 5 says where the policy goes');
  const policy = moved(yaml[2] as string);
  const hup = /`(kill -HUP \$\([^`]+\))`/.exec(doc)?.[1];
  t.ok(hup, 'step 5 gives the SIGHUP command');

  // the script: each doc line announced by its index (its output is read back by that line)
  const lines: string[] = [];
  const script = ['set -m', "trap 'kill %1 %2 %3 %4 2>/dev/null' EXIT", "trap 'exit 1' TERM"];
  const step = (line: string, shLine = moved(line)) => {
    lines.push(line);
    script.push(`echo "@@ ${lines.length - 1}"`, shLine, /&\s*$/.test(line) ? 'pids+=($!); echo "@@pid $!"' : 's=$?; printf \'\\n@@exit %s\\n\' "$s"');
  };
  const app = (path: string) => `curl -s -H 'Host: orders' http://127.0.0.1:${ports.get('15001')}${path}`;
  for (const [i, block] of sh.entries()) {
    for (const line of block.split('\n').filter((l) => l.trim() !== '')) step(line);
    if (i === 1) {
      // the sidecars ready and the app listening: what the doc's next steps assume (bounded:
      // 30 s; a loaded machine was seen starting python after the sidecars were ready)
      script.push(`for i in $(seq 120); do curl -sf http://127.0.0.1:${ports.get('15000')}/ready >/dev/null && curl -sf http://127.0.0.1:${ports.get('15100')}/ready >/dev/null && curl -s -o /dev/null http://127.0.0.1:${ports.get('8080')}/ && break; sleep 0.25; done`);
    }
    if (i === 3) {
      step('#app serves its own folder', app('/certs/ca/root.key') + ' -o /dev/null -w "%{http_code}"');
      script.push(`cat >> orders.yaml <<'EOF'\n${policy}EOF`);
    }
    if (i === 4) {
      step('#hup', `${hup}; for i in $(seq 40); do [ "$(grep -c 'config reloaded' orders.log)" = 2 ] && break; sleep 0.25; done; grep -c 'config reloaded' orders.log`);
    }
  }
  // every job's own exit status (bash keeps those of its background pids after they are reaped)
  script.push('for p in "${pids[@]}"; do wait "$p"; echo "@@status $p $?"; done');
  const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile('bash', ['-c', script.join('\n')], { cwd, timeout: 90_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })),
  );
  t.equal(run.code, 0, 'the script ran to its end');
  if (run.code !== 0) t.comment(run.stdout, run.stderr);

  const outputs: Outputs = new Map();
  const pids: number[] = [];
  for (const part of run.stdout.split(/^@@ /m).slice(1)) {
    const index = Number(part.slice(0, part.indexOf('\n')));
    const body = part.slice(part.indexOf('\n') + 1);
    const pid = /^@@pid (\d+)$/m.exec(body);
    if (pid) pids.push(Number(pid[1]));
    const exit = /^@@exit (\d+)$/m.exec(body);
    // the background app's start-up line lands in whichever step runs when python writes it
    // (its stdout is a pipe here, so buffered; on a loaded machine that was step 4's curl)
    const own = body.replace(/^@@(pid|exit|status) \d+.*$/gm, '').replace(/^Serving HTTP on .*\n?/gm, '');
    outputs.set(lines[index] as string, { out: own, code: exit ? Number(exit[1]) : 0 });
  }
  const said = (start: string, exactly = false) => {
    const line = lines.find((l) => (exactly ? l.trim() === start : l.startsWith(start)));
    t.ok(line, `the doc runs ${start}`);
    return outputs.get(line as string) ?? { out: '', code: -1 };
  };

  // step 3
  const check = said('npx meshcar check');
  t.equal(check.code, 0, 'check passes both configs');
  t.match(check.out, /orders\.yaml: valid sidecar configuration\n.*frontend\.yaml: valid sidecar configuration/, check.out);
  // step 4
  const answer = /The answer is the orders app's \(`([^`]+)`\)/.exec(doc)?.[1] ?? 'the doc names the answer';
  t.equal(said("curl -H 'Host: orders' http://127.0.0.1:15001/", true).out.trim(), answer, 'the call answers what the doc says');
  t.equal(outputs.get('#app serves its own folder')?.out.trim(), '404', "the CA's key is not served through the mesh");
  t.match(JSON.parse(said('curl -s http://127.0.0.1:15000/identity').out), { spiffeId: 'spiffe://mesh.local/svc/orders', notAfter: String, nextRenewal: String });
  t.match(JSON.parse(said('curl -s http://127.0.0.1:15000/endpoints').out), { endpoints: [{ direction: 'inbound', peer: 'frontend', method: 'GET' }] });
  t.match(said('curl -s http://127.0.0.1:15100/metrics').out, /^meshcar_requests_total\{direction="outbound",peer="orders",method="GET",route="\/",code="200"\} 1$/m);
  const doctor = said('npx meshcar doctor');
  t.equal(doctor.code, 0, 'doctor: nothing failed');
  const checks = doctor.out.trim().split('\n').slice(0, -1);
  t.ok(checks.length >= 6 && checks.every((l) => l.startsWith('✓ ')), 'doctor: every check one line, each ✓');
  if (!checks.every((l) => l.startsWith('✓ '))) t.comment(doctor.out);
  // step 5
  const reload = /The reload answers `([^`]+)`/.exec(doc)?.[1];
  t.equal(said('curl -X POST http://127.0.0.1:15000/reload').out.trim(), reload, 'the reload answers as the doc quotes it');
  t.equal(said("curl -H 'Host: orders' http://127.0.0.1:15001/docs/1").out.trim(), 'doc 1', 'the allowed call');
  t.match(JSON.parse(said("curl -H 'Host: orders' http://127.0.0.1:15001/ ").out), { error: 'forbidden' });
  t.match(JSON.parse(said("curl -H 'Host: orders' -X DELETE").out), { error: 'forbidden' });
  t.equal(outputs.get('#hup')?.out.trim(), '2', 'the SIGHUP command reloads the sidecar');
  // step 6: the sidecars drained and stopped (their pid is the one their log lines carry)
  for (const name of ['orders', 'frontend']) {
    const log = (await readFile(join(cwd, `${name}.log`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; pid: number });
    t.same(log.slice(-1).map((l) => l.msg), ['stopped'], `${name} logs stopped last`);
    t.ok(log.some((l) => l.msg === 'draining'), `${name} drained`);
  }
  t.equal(pids.length, 4, 'four background jobs, as %1 to %4');
  const status = new Map([...run.stdout.matchAll(/^@@status (\d+) (\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]));
  t.same([status.get(pids[2] as number), status.get(pids[3] as number)], [0, 0], 'the sidecars (%3 %4) exit 0');
  for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `job ${pid} has ended`);
});

t.test('step 1 names every program the steps run beyond Node, make and a shell', async (t) => {
  const doc = await readFile(DOC, 'utf8');
  const step1 = doc.slice(doc.indexOf('## 1.'), doc.indexOf('## 2.'));
  // each command's first word: at a line's start, after &&, ||, ;, | or $(
  const programs = new Set<string>();
  for (const [, block] of doc.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const [, word] of (block as string).replace(/#.*$/gm, '').matchAll(/(?:^|&&|\|\||;|\||\$\()\s*([a-z][\w.-]*)/gm)) programs.add(word as string);
  }
  // the shell's own, coreutils and grep (on every system with bash), and what step 1 asks for first
  const everywhere = new Set(['cd', 'echo', 'kill', 'mkdir', 'cut', 'grep', 'cat', 'make', 'npm', 'npx', 'node']);
  const needed = [...programs].filter((p) => !everywhere.has(p));
  t.ok(needed.length > 0, `programs read: ${[...programs].join(' ')}`);
  for (const program of needed) t.match(step1, new RegExp(`\`${program}\``), `step 1 names ${program}`);
});
