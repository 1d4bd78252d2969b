// The sidecar benchmark (`make bench`): the same load straight to an app and through an
// outbound + inbound sidecar pair, in one run, reported as ratios.
//
//   load generator ──▶ app                                               (direct)
//   load generator ──▶ client sidecar outbound ══mTLS/h2══▶ server sidecar inbound ──▶ app   (pair)
//
// Two loads, each run direct and then via the pair: (a) saturating, 50 keep-alive connections
// as fast as they go; (b) a fixed 1,000 req/s over 10 connections, latency measured from each
// request's scheduled send time. The saturating load also runs through a second pair started
// with `metrics: {requests: false}`: metrics on against off is the cost of request metrics. For each sidecar: CPU per request from /proc/<pid>/stat
// (utime + stime, CLK_TCK) and peak RSS (VmHWM). Prints a table and writes
// bench/results/latest.json. Every process it starts is stopped at the end, on error and on
// SIGINT/SIGTERM. Only 127.0.0.1 is used. See bench/README.md for how to read the output.
//
// Usage: node bench/run.mjs [--direct-only]     (needs `make build` first; `make bench` does both)
// Environment: BENCH_SECONDS (10) per measured run, BENCH_WARMUP (2) s per path, BENCH_RATE (1000),
// BENCH_ACCESS_LOG=1 (sidecar access logs on), BENCH_METRICS=both|on (both, the default: a second
// pair with `metrics: {requests: false}` runs the saturating load too, for the cost of metrics),
// BENCH_DIRECT_ONLY=1 (app only, no CA or sidecars), BENCH_KEEP=1 (keep the temp dir and logs),
// BENCH_STRICT=1 (exit 1 when a target is missed), BENCH_SIDECAR_NODE_ARGS (node flags for the
// sidecars only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), BENCH_CODEC=node|meshcar (the
// sidecars' http2.codec; unset: the default, meshcar), BENCH_IDLE_SECONDS (20; 0 skips): the idle pair's
// wake-ups per second (context switches, /proc/PID/status) and CPU, after one call crossed it,
// after BENCH_IDLE_SETTLE_SECONDS (20; reported on their own rows) of settling after the start;
// BENCH_OPENAPI=shadow|enforce (both sidecars check the calls against config/orders.openapi.yaml),
// BENCH_LOADS=saturating|rate (one load only; default both), BENCH_REQUEST=api (each request an
// API call: a POST of a ~1 KB JSON body with an 800-character bearer token and a traceparent of
// its own, bench/load.mjs --request api; default: a bare GET).

import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const LOAD = join(ROOT, 'bench', 'load.mjs');
const APP = join(ROOT, 'bench', 'app.mjs');
const RESULTS = join(ROOT, 'bench', 'results');

function envNumber(name, fallback, min, max) {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`bench: ${name}=${text} is not a number between ${min} and ${max}\n`);
    process.exit(2);
  }
  return n;
}

const SECONDS = envNumber('BENCH_SECONDS', 10, 1, 600);
// idle pair, before any load: wake-ups (context switches) and CPU of each sidecar
const IDLE_SECONDS = envNumber('BENCH_IDLE_SECONDS', 20, 0, 600);
const IDLE_SETTLE_SECONDS = envNumber('BENCH_IDLE_SETTLE_SECONDS', 20, 0, 600);
const WARMUP = envNumber('BENCH_WARMUP', 2, 0, 60);
const RATE = envNumber('BENCH_RATE', 1000, 1, 100_000);
const SATURATING_CONNECTIONS = 50;
const RATE_CONNECTIONS = 10;
const DIRECT_ONLY = process.argv.includes('--direct-only') || process.env.BENCH_DIRECT_ONLY === '1';
const ACCESS_LOG = process.env.BENCH_ACCESS_LOG === '1';
const KEEP = process.env.BENCH_KEEP === '1';
const STRICT = process.env.BENCH_STRICT === '1';
// extra node flags for the two sidecars only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
// the sidecars run with the flags the `meshcar` launcher uses (see src/cli.ts's first line)
const SIDECAR_NODE_ARGS = (process.env.BENCH_SIDECAR_NODE_ARGS ?? '--max-semi-space-size=4 --heap-growing-percent=50').split(/\s+/).filter(Boolean);
/** An optional choice from the environment: '' when unset, else one of `choices` (exit 2 otherwise). */
function envChoice(name, choices) {
  const text = process.env[name] ?? '';
  if (text !== '' && !choices.includes(text)) {
    process.stderr.write(`bench: ${name}=${text}: use ${choices.join(' or ')}\n`);
    process.exit(2);
  }
  return text;
}

const CODEC = envChoice('BENCH_CODEC', ['node', 'meshcar']);
const REQUEST_KIND = envChoice('BENCH_REQUEST', ['get', 'api']) || 'get';
// BENCH_LOADS=rate (or saturating): run only that load, e.g. to profile the paced path alone
const LOADS = (process.env.BENCH_LOADS ?? 'saturating,rate').split(',');
for (const load of LOADS) {
  if (load !== 'saturating' && load !== 'rate') {
    process.stderr.write(`bench: BENCH_LOADS=${process.env.BENCH_LOADS}: use saturating, rate or both (comma-separated)\n`);
    process.exit(2);
  }
}
// BENCH_OPENAPI=shadow|enforce: both sidecars hold the calls (GET /orders/42) against
// config/orders.openapi.yaml (inbound.openapi and the upstream's openapi); unset: no spec
const OPENAPI = envChoice('BENCH_OPENAPI', ['shadow', 'enforce']);
const OPENAPI_YAML = OPENAPI ? `{spec: ${JSON.stringify(join(ROOT, 'config', 'orders.openapi.yaml'))}, mode: ${OPENAPI}}` : '';
const TD = 'mesh.local';
const SERVER_ID = `spiffe://${TD}/svc/bench-server`;
const TARGETS = { cpuUsPerRequest: 40, addedP99Ms: 1, rssMb: 80, metricsCostPct: 5 };
// both: a second pair with `metrics: {requests: false}` runs the saturating load too, and the
// report gives the cost of request metrics; on: only the metrics-on pair (a shorter run)
const METRICS_MODE = (() => {
  const text = process.env.BENCH_METRICS ?? 'both';
  if (text !== 'both' && text !== 'on') {
    process.stderr.write(`bench: BENCH_METRICS=${text}: use both (default) or on\n`);
    process.exit(2);
  }
  return text;
})();
const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

// ---- processes: every child is tracked and stopped on the way out ----------------------------
const children = new Set();
let tmp;
let cleaning;

function startProcess(name, args, { logFile, stdout = 'ignore' } = {}) {
  const fd = logFile ? openSync(logFile, 'a') : 'ignore';
  const child = spawn(process.execPath, args, { cwd: tmp ?? ROOT, stdio: ['ignore', stdout === 'pipe' ? 'pipe' : fd, fd], env: { ...process.env, NODE_ENV: 'production' } });
  if (typeof fd === 'number') closeSync(fd);
  child.benchName = name;
  child.exited = false;
  children.add(child);
  child.on('exit', (code, signal) => {
    child.exited = true;
    child.exitCode_ = code ?? signal;
    children.delete(child);
  });
  return child;
}

async function stopAll() {
  const alive = [...children].filter((c) => !c.exited);
  for (const c of alive) c.kill('SIGTERM');
  const deadline = Date.now() + 3000;
  while (alive.some((c) => !c.exited) && Date.now() < deadline) await sleep(50);
  for (const c of alive) if (!c.exited) c.kill('SIGKILL');
  while (alive.some((c) => !c.exited) && Date.now() < deadline + 1000) await sleep(20);
}

function cleanup() {
  cleaning ??= (async () => {
    await stopAll();
    if (tmp && !KEEP) rmSync(tmp, { recursive: true, force: true });
    else if (tmp) process.stderr.write(`bench: kept ${tmp}\n`);
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping every process\n`);
    cleanup().finally(() => process.exit(130));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- small helpers ---------------------------------------------------------------------------
async function freePorts(n) {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => res(s));
  })));
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function cli(args) {
  try {
    return execFileSync(process.execPath, [CLI, ...args], { cwd: tmp, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (err) {
    throw new Error(`meshcar ${args.slice(0, 2).join(' ')} failed: ${(err.stderr || err.stdout || err.message).trim()}`);
  }
}

function get(url, { headers = {}, ca } = {}) {
  return new Promise((res) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { headers, agent: false, ca, timeout: 2000 }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks).toString() }));
      r.on('error', (e) => res({ status: 0, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => res({ status: 0, error: e.message }));
    req.end();
  });
}

function tail(file, lines = 15) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitFor(what, child, logFile, probe, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exited) throw new Error(`${what} exited (${child.exitCode_}) before it was ready; its log:\n${tail(logFile)}`);
    const r = await probe();
    if (r === true) return;
    last = r;
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000} s (last: ${last}); its log:\n${tail(logFile)}`);
}

// ---- /proc sampling ----------------------------------------------------------------------------
function procSample(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
    const ticks = Number(fields[11]) + Number(fields[12]); // utime (14) + stime (15)
    const systemTicks = Number(fields[12]); // the kernel's share: system calls, and loopback delivery to the peer inside them
    let schedNs = 0; // precise on-CPU time of every thread, a cross-check for the tick-sampled one
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        schedNs += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
      } catch { /* thread gone */ }
    }
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const count = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)$`, 'm').exec(status)?.[1] ?? NaN);
    const switches = count('voluntary_ctxt_switches') + count('nonvoluntary_ctxt_switches');
    // read and write system calls (any fd): per request, how well reads and writes are batched
    let syscr = NaN;
    let syscw = NaN;
    try {
      const io = readFileSync(`/proc/${pid}/io`, 'utf8');
      syscr = Number(/^syscr:\s+(\d+)$/m.exec(io)?.[1] ?? NaN);
      syscw = Number(/^syscw:\s+(\d+)$/m.exec(io)?.[1] ?? NaN);
    } catch { /* /proc/PID/io needs the same user or root */ }
    return { ticks, systemTicks, schedNs, hwmKb: kb('VmHWM'), rssKb: kb('VmRSS'), switches, syscr, syscw };
  } catch {
    return null;
  }
}

function procDelta(before, after, requests) {
  if (!before || !after) return null;
  const cpuS = (after.ticks - before.ticks) / CLK_TCK;
  const schedS = (after.schedNs - before.schedNs) / 1e9;
  return {
    cpu_s: round(cpuS, 3),
    cpu_us_per_request: requests > 0 ? round((cpuS * 1e6) / requests, 1) : null,
    system_cpu_us_per_request: requests > 0 ? round(((after.systemTicks - before.systemTicks) / CLK_TCK * 1e6) / requests, 1) : null,
    sched_cpu_s: round(schedS, 3),
    sched_cpu_us_per_request: requests > 0 ? round((schedS * 1e6) / requests, 1) : null,
    reads_per_request: requests > 0 ? round((after.syscr - before.syscr) / requests, 2) : null,
    writes_per_request: requests > 0 ? round((after.syscw - before.syscw) / requests, 2) : null,
    rss_mb: round(after.rssKb / 1024, 1),
    peak_rss_mb: round(after.hwmKb / 1024, 1),
  };
}

const round = (n, d) => (n === null || n === undefined || Number.isNaN(n) ? null : Math.round(n * 10 ** d) / 10 ** d);

// ---- one load run ------------------------------------------------------------------------------
/** Busy jiffies of the whole machine (steal included: CPU we could not have). */
function machineBusyTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return user + nice + system + irq + softirq + (steal || 0);
}

async function runLoad(args, watched) {
  const busyBefore = machineBusyTicks();
  const wallBefore = performance.now();
  const before = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, procSample(pid)]));
  const child = startProcess('load', [LOAD, ...args], { stdout: 'pipe', logFile: join(tmp, 'load.log') });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  const timeout = setTimeout(() => child.kill('SIGKILL'), (Number(args[args.indexOf('--duration') + 1]) + 30) * 1000);
  await new Promise((r) => child.on('exit', r));
  clearTimeout(timeout);
  const after = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, procSample(pid)]));
  let result;
  try {
    result = JSON.parse(out);
  } catch {
    throw new Error(`load generator failed (${child.exitCode_}): ${tail(join(tmp, 'load.log'), 5)}`);
  }
  result.processes = Object.fromEntries(Object.keys(watched).map((k) => [k, procDelta(before[k], after[k], result.requests.completed)]));
  // CPU the rest of the machine used meanwhile (other people's work): how noisy was this run?
  const wallS = (performance.now() - wallBefore) / 1000;
  const busyS = (machineBusyTicks() - busyBefore) / CLK_TCK;
  const oursS = Object.values(result.processes).reduce((a, p) => a + (p?.cpu_s ?? 0), 0) + result.generator.cpu_s;
  result.machine = { busy_cores: round(busyS / wallS, 2), other_cores: round(Math.max(0, busyS - oursS) / wallS, 2) };
  return result;
}

function loadArgs(port, hostHeader, load, seconds) {
  const args = ['--port', String(port), '--header-host', hostHeader, '--path', '/orders/42', '--duration', String(seconds), '--request', REQUEST_KIND];
  if (load === 'saturating') args.push('--connections', String(SATURATING_CONNECTIONS));
  else args.push('--connections', String(RATE_CONNECTIONS), '--rate', String(RATE));
  return args;
}

// ---- the setup ---------------------------------------------------------------------------------
function yamlString(s) {
  return JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar
}

/** Wake-ups, CPU and RSS of each process over `seconds` of doing nothing. */
async function idleWindow(ids, seconds) {
  const before = Object.fromEntries(Object.entries(ids).map(([k, pid]) => [k, procSample(pid)]));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const took = (performance.now() - t0) / 1000;
  const out = {};
  for (const [k, pid] of Object.entries(ids)) {
    const after = procSample(pid);
    const b = before[k];
    if (!after || !b) continue;
    out[k] = {
      wakeups_per_s: round((after.switches - b.switches) / took, 2),
      cpu_pct: round(((after.schedNs - b.schedNs) / 1e9 / took) * 100, 3),
      rss_mb: round(after.rssKb / 1024, 1),
    };
  }
  return out;
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "make build" first (or "make bench", which does)`);
  tmp = mkdtempSync(join(tmpdir(), 'meshcar-bench-'));
  const started = new Date();
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? '?', node: process.version, clk_tck: CLK_TCK, loadavg_1m: round(loadavg()[0], 2) };
  const [appPort, caPort] = await freePorts(2);

  process.stdout.write(`meshcar bench: ${SECONDS} s per run, warm-up ${WARMUP} s per path; ${machine.cpus} CPUs (${machine.model}), node ${machine.node}, CLK_TCK ${CLK_TCK}\n`);
  if (machine.loadavg_1m > machine.cpus * 0.5) process.stdout.write(`warning: load average ${machine.loadavg_1m} before the start; the numbers will be noisy\n`);

  // the app
  const appLog = join(tmp, 'app.log');
  const app = startProcess('app', [APP, '--port', String(appPort)], { logFile: appLog });
  await waitFor('the app', app, appLog, async () => ((await get(`http://127.0.0.1:${appPort}/orders/42`)).status === 200 ? true : 'no answer'));
  const watched = { app: app.pid };

  const sidecars = {};
  /** name → { port, host, pids: {client, server} } */
  const pairs = {};
  if (!DIRECT_ONLY) {
    // the CA
    const caDir = join(tmp, 'ca');
    cli(['ca', 'init', '--dir', caDir, '--trust-domain', TD]);
    const caYaml = join(tmp, 'ca.yaml');
    writeFileSync(caYaml, [
      `trustDomain: ${TD}`,
      `dir: ${yamlString(caDir)}`,
      `listen: 127.0.0.1:${caPort}`,
      'serverNames: [localhost, 127.0.0.1]',
      'log: {level: warn}',
      '',
    ].join('\n'));
    const caLog = join(tmp, 'ca.log');
    const ca = startProcess('ca', [CLI, 'ca', 'serve', '--config', caYaml], { logFile: caLog });
    const bundle = readFileSync(join(caDir, 'bundle.pem'));
    await waitFor('the CA', ca, caLog, async () => {
      const r = await get(`https://127.0.0.1:${caPort}/healthz`, { ca: bundle });
      return r.status === 200 ? true : r.error ?? `status ${r.status}`;
    });

    // the sidecar pairs: the same config, request metrics on ("pair") and off ("pair_nometrics")
    const wanted = { pair: true, ...(METRICS_MODE === 'both' ? { pair_nometrics: false } : {}) };
    const startedPairs = await Promise.all(Object.entries(wanted).map(([name, metricsOn]) => startPair(name, metricsOn, { caDir, caPort, appPort })));
    // CA work is over: stop the CA so it takes no CPU during the runs
    ca.kill('SIGTERM');
    for (const pair of startedPairs) {
      await pair.probe();
      pairs[pair.name] = pair;
      for (const side of ['client', 'server']) {
        const key = pair.name === 'pair' ? side : `${side}_nometrics`;
        const sample = procSample(pair.pids[side]);
        sidecars[key] = { pid: pair.pids[side], metrics_requests: pair.metricsOn, rss_after_ready_mb: sample ? round(sample.rssKb / 1024, 1) : null };
      }
    }
    // the metrics-on pair is the one the main table and the targets are about
    watched.client = pairs.pair.pids.client;
    watched.server = pairs.pair.pids.server;
  }

  const paths = { direct: { port: appPort, host: `127.0.0.1:${appPort}`, watched } };
  for (const [name, pair] of Object.entries(pairs)) {
    paths[name] = { port: pair.outboundPort, host: 'bench', watched: { app: app.pid, client: pair.pids.client, server: pair.pids.server } };
  }

  // idle: the pair after one call (sessions open), nothing in flight. Two windows: the first
  // IDLE_SETTLE_SECONDS after start (V8's memory reducer runs its full GCs there, once, after
  // the start's allocations stop), then IDLE_SECONDS of steady idle, what a pod pays all day
  const idle = {};
  if (!DIRECT_ONLY && IDLE_SECONDS > 0) {
    process.stdout.write(`idle pair (${IDLE_SETTLE_SECONDS} s settling, then ${IDLE_SECONDS} s)\n`);
    const ids = { client: pairs.pair.pids.client, server: pairs.pair.pids.server };
    if (IDLE_SETTLE_SECONDS > 0) {
      for (const [k, v] of Object.entries(await idleWindow(ids, IDLE_SETTLE_SECONDS))) idle[`${k}, first ${IDLE_SETTLE_SECONDS} s`] = v;
    }
    Object.assign(idle, await idleWindow(ids, IDLE_SECONDS));
  }

  // warm-up: JIT, connection pools, TLS sessions
  if (WARMUP > 0) {
    for (const [name, p] of Object.entries(paths)) {
      process.stdout.write(`warming up ${name} (${WARMUP} s)\n`);
      await runLoad(loadArgs(p.port, p.host, 'saturating', WARMUP), p.watched);
    }
  }

  const loads = {
    saturating: `saturating, ${SATURATING_CONNECTIONS} conns`,
    rate: `${RATE} req/s, ${RATE_CONNECTIONS} conns`,
  };
  const runs = {};
  for (const load of Object.keys(loads).filter((l) => LOADS.includes(l))) {
    runs[load] = {};
    for (const [name, p] of Object.entries(paths)) {
      // metrics off is measured under the saturating load: the cost of metrics is a throughput figure
      if (name === 'pair_nometrics' && load !== 'saturating') continue;
      process.stdout.write(`running ${loads[load]} ${name} (${SECONDS} s)\n`);
      await sleep(500);
      runs[load][name] = await runLoad(loadArgs(p.port, p.host, load, SECONDS), p.watched);
    }
  }

  // metrics on against off, a second round in the other order (ABBA): whichever pair runs
  // first or on a noisier moment, the two rounds together even it out
  const metricsRounds = [];
  if (runs.saturating?.pair && runs.saturating.pair_nometrics) {
    metricsRounds.push({ on: runs.saturating.pair, off: runs.saturating.pair_nometrics });
    const again = {};
    for (const name of ['pair_nometrics', 'pair']) {
      process.stdout.write(`running ${loads.saturating} ${name}, second round (${SECONDS} s)\n`);
      await sleep(500);
      again[name] = await runLoad(loadArgs(paths[name].port, paths[name].host, 'saturating', SECONDS), paths[name].watched);
    }
    metricsRounds.push({ on: again.pair, off: again.pair_nometrics });
  }

  // ---- summary ----
  const summary = {};
  for (const load of Object.keys(runs)) {
    const d = runs[load].direct;
    const p = runs[load].pair;
    if (!p) continue;
    summary[load] = {
      added_p50_ms: round(p.latency_ms.p50 - d.latency_ms.p50, 3),
      added_p99_ms: round(p.latency_ms.p99 - d.latency_ms.p99, 3),
      added_p999_ms: round(p.latency_ms.p999 - d.latency_ms.p999, 3),
      throughput_ratio: round(p.rps / d.rps, 3),
      cpu_us_per_request: { client: p.processes.client?.cpu_us_per_request ?? null, server: p.processes.server?.cpu_us_per_request ?? null },
      sched_cpu_us_per_request: { client: p.processes.client?.sched_cpu_us_per_request ?? null, server: p.processes.server?.sched_cpu_us_per_request ?? null },
      peak_rss_mb: { client: p.processes.client?.peak_rss_mb ?? null, server: p.processes.server?.peak_rss_mb ?? null },
    };
  }
  // the cost of request metrics: the same saturating load through a pair with metrics.requests
  // off, both rounds pooled (req/s averaged; CPU per request = CPU seconds ÷ requests)
  let metricsCost = null;
  if (metricsRounds.length > 0) {
    const d = runs.saturating.direct;
    const pooled = (key) => {
      const rs = metricsRounds.map((round) => round[key]);
      const requests = rs.reduce((a, r) => a + r.requests.completed, 0);
      const cpu = (side, field) => {
        const s = rs.reduce((a, r) => a + (r.processes[side]?.[field] ?? NaN), 0);
        return round((s * 1e6) / requests, 1);
      };
      const rps = rs.reduce((a, r) => a + r.rps, 0) / rs.length;
      return {
        rps: round(rps, 0),
        rps_per_round: rs.map((r) => round(r.rps, 0)),
        throughput_ratio: round(rps / d.rps, 3),
        cpu_us_per_request: { client: cpu('client', 'cpu_s'), server: cpu('server', 'cpu_s') },
        sched_cpu_us_per_request: { client: cpu('client', 'sched_cpu_s'), server: cpu('server', 'sched_cpu_s') },
        p50_ms: round(rs.reduce((a, r) => a + r.latency_ms.p50, 0) / rs.length, 3),
        p99_ms: round(rs.reduce((a, r) => a + r.latency_ms.p99, 0) / rs.length, 3),
      };
    };
    const on = pooled('on');
    const off = pooled('off');
    const cpuSum = (m) => m.sched_cpu_us_per_request.client + m.sched_cpu_us_per_request.server;
    metricsCost = {
      rounds: metricsRounds.length,
      on,
      off,
      // how much throughput turning metrics on costs, in % of the metrics-off throughput
      throughput_cost_pct: round((1 - on.rps / off.rps) * 100, 1),
      // the same from CPU per request (both sidecars, precise schedstat): less sensitive to noise
      cpu_cost_pct: round((cpuSum(on) / cpuSum(off) - 1) * 100, 1),
    };
  }

  const targets = [];
  if (summary.saturating) {
    for (const side of ['client', 'server']) {
      const v = summary.saturating.cpu_us_per_request[side];
      targets.push({ target: `${side} sidecar CPU per request (saturating) <= ${TARGETS.cpuUsPerRequest} us`, value: v, pass: v !== null && v <= TARGETS.cpuUsPerRequest });
    }
  }
  if (summary.rate) {
    const v = summary.rate.added_p99_ms;
    targets.push({ target: `added p99 at ${RATE} req/s <= ${TARGETS.addedP99Ms} ms`, value: v, pass: v !== null && v <= TARGETS.addedP99Ms });
  }
  if (metricsCost) {
    const v = metricsCost.throughput_cost_pct;
    targets.push({ target: `throughput cost of request metrics (saturating, on vs off) < ${TARGETS.metricsCostPct} %`, value: v, pass: v !== null && v < TARGETS.metricsCostPct });
  }
  if (!DIRECT_ONLY) {
    for (const side of ['client', 'server']) {
      const v = Math.max(...Object.values(summary).map((s) => s.peak_rss_mb[side] ?? Infinity));
      targets.push({ target: `${side} sidecar peak RSS < ${TARGETS.rssMb} MB`, value: v, pass: v < TARGETS.rssMb });
    }
  }

  const report = {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    machine,
    settings: { seconds: SECONDS, warmup_s: WARMUP, rate: RATE, saturating_connections: SATURATING_CONNECTIONS, rate_connections: RATE_CONNECTIONS, access_log: ACCESS_LOG, direct_only: DIRECT_ONLY, metrics: METRICS_MODE, openapi: OPENAPI || null, request: REQUEST_KIND },
    loads,
    sidecars,
    idle,
    runs,
    metrics_rounds: metricsRounds.slice(1),
    summary,
    metrics_cost: metricsCost,
    targets,
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  process.stdout.write('\n' + formatReport(report) + `\nwritten: ${join('bench', 'results', 'latest.json')}\n`);
  return targets.every((t) => t.pass) ? 0 : STRICT ? 1 : 0;
}

/**
 * A client sidecar (outbound, upstream `bench`) and a server sidecar (inbound → the app), each
 * with `metrics: {requests: <metricsOn>}`; resolves once both answer /ready. probe() then
 * checks that one request through the pair reaches the app.
 */
async function startPair(name, metricsOn, { caDir, caPort, appPort }) {
  const [inboundPort, serverAdmin, outboundPort, clientAdmin] = await freePorts(4);
  const tag = name === 'pair' ? '' : `-${name}`;
  for (const svc of ['bench-server', 'bench-client']) cli(['ca', 'token', '--dir', caDir, '--service', svc, '--ttl', '1h', '--out', join(tmp, `${svc}${tag}.token`)]);
  const common = (svc) => [
    `service: ${svc}`,
    `trustDomain: ${TD}`,
    'identity:',
    '  ca:',
    `    url: https://127.0.0.1:${caPort}`,
    `    bundle: ${yamlString(join(caDir, 'bundle.pem'))}`,
    `    token: ${yamlString(join(tmp, `${svc}${tag}.token`))}`,
    `  dir: ${yamlString(join(tmp, `${svc}${tag}`))}`,
  ];
  const tailLines = (adminPort) => [
    'admin:',
    `  listen: 127.0.0.1:${adminPort}`,
    'log:',
    '  level: warn',
    `  access: ${ACCESS_LOG}`,
    'metrics:',
    `  requests: ${metricsOn}`,
    ...(CODEC ? ['http2:', `  codec: ${CODEC}`] : []),
    '',
  ];
  const serverYaml = join(tmp, `server${tag}.yaml`);
  writeFileSync(serverYaml, [
    ...common('bench-server'),
    'inbound:',
    `  listen: 127.0.0.1:${inboundPort}`,
    `  app: http://127.0.0.1:${appPort}`,
    ...(OPENAPI ? [`  openapi: ${OPENAPI_YAML}`] : []),
    ...tailLines(serverAdmin),
  ].join('\n'));
  const clientYaml = join(tmp, `client${tag}.yaml`);
  writeFileSync(clientYaml, [
    ...common('bench-client'),
    'outbound:',
    `  listen: 127.0.0.1:${outboundPort}`,
    '  upstreams:',
    '    bench:',
    `      endpoints: [127.0.0.1:${inboundPort}]`,
    `      identity: ${SERVER_ID}`,
    '      timeout: 5s',
    ...(OPENAPI ? [`      openapi: ${OPENAPI_YAML}`] : []),
    ...tailLines(clientAdmin),
  ].join('\n'));
  for (const file of [serverYaml, clientYaml]) cli(['check', '--config', file]);

  const serverLog = join(tmp, `server-sidecar${tag}.log`);
  const clientLog = join(tmp, `client-sidecar${tag}.log`);
  const server = startProcess(`server sidecar${tag}`, [...SIDECAR_NODE_ARGS, CLI, 'run', '--config', serverYaml], { logFile: serverLog });
  const client = startProcess(`client sidecar${tag}`, [...SIDECAR_NODE_ARGS, CLI, 'run', '--config', clientYaml], { logFile: clientLog });
  const ready = (port) => async () => {
    const r = await get(`http://127.0.0.1:${port}/ready`);
    return r.status === 200 ? true : r.error ?? `status ${r.status}`;
  };
  await Promise.all([
    waitFor(`the server sidecar${tag}`, server, serverLog, ready(serverAdmin)),
    waitFor(`the client sidecar${tag}`, client, clientLog, ready(clientAdmin)),
  ]);
  return {
    name,
    metricsOn,
    outboundPort,
    pids: { client: client.pid, server: server.pid },
    async probe() {
      // one request through the pair must reach the app
      const probe = await get(`http://127.0.0.1:${outboundPort}/orders/42`, { headers: { host: 'bench' } });
      if (probe.status !== 200 || !probe.body.includes('meshcar-bench')) {
        throw new Error(`a request through ${name} did not reach the app: status ${probe.status} ${probe.error ?? probe.body.slice(0, 300)}\nclient sidecar log:\n${tail(clientLog)}\nserver sidecar log:\n${tail(serverLog)}`);
      }
      // and the metrics switch did what it says: request series only with metrics on
      const metrics = await get(`http://127.0.0.1:${clientAdmin}/metrics`);
      const hasRequests = /^meshcar_requests_total\{/m.test(metrics.body ?? '');
      if (hasRequests !== metricsOn) throw new Error(`${name}: metrics.requests is ${metricsOn} but /metrics ${hasRequests ? 'has' : 'lacks'} meshcar_requests_total series`);
    },
  };
}

// ---- the table ---------------------------------------------------------------------------------
function formatReport(report) {
  const { loads, runs, summary, metrics_cost: metricsCost, targets } = report;
  const num = (n, d = 0) => (n === null || n === undefined ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
  const ms = (n) => num(n, 3);
  const table = (header, rows) => {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
    const line = (r) => r.map((c, i) => (i < 2 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
    return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
  };
  const out = [];
  if (report.settings.request === 'api') out.push('each request an API call: POST /orders, ~1 KB JSON body, 800-character bearer token, its own traceparent (BENCH_REQUEST=api)', '');
  const rows = [];
  for (const load of Object.keys(runs)) {
    for (const [i, [path, r]] of Object.entries(runs[load]).entries()) {
      const e = r.errors;
      rows.push([i === 0 ? loads[load] : '', path, num(r.rps, 0), ms(r.latency_ms.p50), ms(r.latency_ms.p99), ms(r.latency_ms.p999), ms(r.latency_ms.max), num(e.total), num(r.generator.cpu_us_per_request, 1), num(r.machine.other_cores, 2)]);
    }
  }
  out.push(table(['load', 'path', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors', 'gen µs/req', 'other cores'], rows));
  if (Object.keys(summary).length) {
    out.push('');
    const srows = Object.entries(summary).map(([load, s]) => [
      loads[load], '',
      `${s.added_p50_ms >= 0 ? '+' : ''}${ms(s.added_p50_ms)}`,
      `${s.added_p99_ms >= 0 ? '+' : ''}${ms(s.added_p99_ms)}`,
      `${num(s.throughput_ratio, 3)}`,
      num(s.cpu_us_per_request.client, 1),
      num(s.cpu_us_per_request.server, 1),
      num(s.peak_rss_mb.client, 1),
      num(s.peak_rss_mb.server, 1),
    ]);
    out.push(table(['pair vs direct', '', '+p50 ms', '+p99 ms', 'thru ratio', 'client µs/req', 'server µs/req', 'client RSS MB', 'server RSS MB'], srows));
  }
  if (report.idle && Object.keys(report.idle).length) {
    out.push('');
    out.push(table(['idle pair', 'wake-ups/s', 'CPU % of a core', 'RSS MB'], Object.entries(report.idle).map(([k, v]) => [k, num(v.wakeups_per_s, 2), num(v.cpu_pct, 3), num(v.rss_mb, 1)])));
  }
  if (metricsCost) {
    out.push('');
    const mrows = [['on', metricsCost.on], ['off', metricsCost.off]].map(([name, m]) => [
      loads.saturating, `metrics ${name}`, `${num(m.rps, 0)} (${m.rps_per_round.map((r) => num(r, 0)).join(', ')})`, num(m.throughput_ratio, 3), num(m.cpu_us_per_request.client, 1), num(m.cpu_us_per_request.server, 1),
      num(m.sched_cpu_us_per_request.client, 1), num(m.sched_cpu_us_per_request.server, 1), ms(m.p50_ms), ms(m.p99_ms),
    ]);
    out.push(table([`request metrics (${metricsCost.rounds} rounds)`, '', 'req/s', 'thru ratio', 'client µs/req', 'server µs/req', 'client sched µs', 'server sched µs', 'p50 ms', 'p99 ms'], mrows));
    out.push(`cost of request metrics: ${num(metricsCost.throughput_cost_pct, 1)} % of throughput (1 - on/off req/s), ${num(metricsCost.cpu_cost_pct, 1)} % more sidecar CPU per request (schedstat, both sidecars)`);
  }
  for (const load of Object.keys(runs)) {
    for (const [path, r] of Object.entries(runs[load])) {
      const e = r.errors;
      if (e.total > 0) {
        const kinds = Object.entries(e).filter(([k, v]) => k !== 'total' && v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
        out.push(`errors in ${loads[load]} ${path}: ${kinds}; statuses ${JSON.stringify(r.status)}`);
      }
    }
  }
  if (targets.length) {
    out.push('');
    for (const t of targets) out.push(`${t.pass ? 'PASS' : 'MISS'}  ${t.target}: ${t.value === null ? '-' : t.value}`);
  }
  return out.join('\n');
}

// ---- go ----------------------------------------------------------------------------------------
// A hard bound on the whole run, whatever happens.
const HARD_LIMIT_S = WARMUP * 3 + SECONDS * 7 + IDLE_SETTLE_SECONDS + IDLE_SECONDS + 7 * 35 + 150;
const hardStop = setTimeout(() => {
  process.stderr.write(`bench: still running after ${HARD_LIMIT_S} s; stopping\n`);
  cleanup().finally(() => process.exit(1));
}, HARD_LIMIT_S * 1000);
hardStop.unref();

main().then(
  async (code) => {
    await cleanup();
    process.exit(code);
  },
  async (err) => {
    if (cleaning) return; // a signal is already stopping everything
    process.stderr.write(`bench: ${err.message}\n`);
    await cleanup();
    process.exit(1);
  },
);
