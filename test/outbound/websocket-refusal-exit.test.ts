// A WebSocket tunnel refused at its 101 (the outbound's trust changed during the upgrade: 502)
// and the sidecars closed right after: the process ends by itself. It spun at 100 % CPU in
// node's exit cleanup instead, for good: the refusal destroys the upstream connection, the
// inbound relays that FIN to the far app (end(), a shutdown queued), and the close then reset
// the same socket before the shutdown ran; libuv refuses a reset then (EINVAL) and Node 20
// marks the handle closing without closing it, so it never closed (no 'close', its fd held). A
// side whose FIN is already on its way is now destroyed, not reset (http/tunnel-reset.ts).
// The pair runs in a child process (test/helpers/refused-upgrade-exit.ts), given 20 s to end.

import t from 'tap';
import { spawn } from 'node:child_process';

const LOADER = new URL('../helpers/ts-loader.mjs', import.meta.url).pathname;
const CHILD = new URL('../helpers/refused-upgrade-exit.ts', import.meta.url).pathname;

function runChild(env: Record<string, string> = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; closedToExitMs: number | undefined }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', LOADER, CHILD], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    let closedAt: number | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (closedAt === undefined && stdout.includes('closed\n')) closedAt = Date.now();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, closedToExitMs: closedAt === undefined ? undefined : Date.now() - closedAt });
    });
  });
}

t.test('a tunnel refused at its 101, the sidecars closed at once: the process ends by itself', async (t) => {
  for (let run = 1; run <= 3; run++) {
    const result = await runChild();
    t.match(result.stdout, /^saw HTTP\/1\.1 502 /m, `run ${run}: the app got 502`);
    t.match(result.stdout, /^closed$/m, `run ${run}: the pair closed`);
    t.same([result.code, result.signal], [0, null], `run ${run}: the process ended by itself (${result.closedToExitMs} ms after the close)${result.stderr ? `\n${result.stderr}` : ''}`);
  }
});

// the far app's tunnel was open (it sent its 101) when the outbound refused it: a FIN there read
// as the app's clean end of a stream, and the far app sat half-open (a re-review: CLOSE-WAIT and
// FIN-WAIT-2 five seconds on); the upstream connection is reset, and the inbound relays the abort
t.test('the far app of a tunnel refused at its 101 reads an abort, not a clean end', async (t) => {
  const result = await runChild({ FAR_VERDICT: '1' });
  t.match(result.stdout, /^saw HTTP\/1\.1 502 /m, 'the app got 502');
  t.match(result.stdout, /^far error ECONNRESET$/m, `the far app's connection was reset (${result.stdout.trim().replace(/\n/g, '; ')})`);
  t.same([result.code, result.signal], [0, null], 'and the process ended by itself');
});
