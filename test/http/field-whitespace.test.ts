// Whitespace cut from the ends of a field value by scans (src/http/raw-headers.ts), and the
// trailers both sidecars forward cut that way. The regular expression it replaces,
// /^[ \t]+|[ \t]+$/g, took time square in a run of inner spaces: a caller's 16 KiB request
// trailer of `a`, spaces and `a` held the inbound's event loop ~180 ms, an app's 60 KB answer
// trailer ~2.5 s, an upstream's 64 KiB one ~3-4 s; V8's linear-time fallback never took it.

import t from 'tap';
import { owsTrimmed as trimOws, trailingOwsTrimmed as trimTrailingOws } from '../../src/http/raw-headers.js';
import { forwardableTrailers } from '../../src/http/response-fields.js';
import { h2Connect, startInbound } from '../helpers/inbound-fixture.js';

t.test('the SP and HTAB at the ends go, nothing else', async (t) => {
  t.equal(trimOws(' \t a b \t '), 'a b');
  t.equal(trimOws('a'), 'a');
  t.equal(trimOws(' \t '), '');
  t.equal(trimOws(''), '');
  t.equal(trimOws('\na\n'), '\na\n', 'a line break is not whitespace here (such a value is refused before)');
  t.equal(trimTrailingOws(' a \t'), ' a');
  t.same(forwardableTrailers({ 'grpc-message': '  all good \t', 'x-list': [' a ', 'b\t'] }), { 'grpc-message': 'all good', 'x-list': ['a', 'b'] });
});

t.test('a long run of inner spaces costs a scan', async (t) => {
  for (const size of [64 << 10, 1 << 20]) {
    const value = `a${' '.repeat(size)}a`;
    const started = performance.now();
    const out = forwardableTrailers({ 'x-pad': value, 'x-end': `${' '.repeat(size)}b` });
    const ms = performance.now() - started;
    t.equal(out['x-pad'], value, 'inner spaces are kept');
    t.equal(out['x-end'], 'b');
    // the bound is far under the fault's and well over a loaded host's scan (168 ms once in a clean-clone run of the suite)
    t.ok(ms < 1_000, `${size} spaces: ${ms.toFixed(1)} ms (the expression: ~3.5 s for 64 KiB, 72 s for 1 MiB)`);
  }
});

t.test("through an inbound to an h2c app: a caller's and an app's trailers of inner spaces cost what other trailers do", async (t) => {
  const f = await startInbound({
    app: {
      protocol: 'h2c',
      handler: (stream, headers) => {
        stream.on('data', () => {});
        stream.on('end', () => {
          stream.respond({ ':status': 200 }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'x-pad': `a${headers['x-fill'] === 'space' ? ' '.repeat(40_000) : 'b'.repeat(40_000)}a` }));
          stream.end('ok');
        });
      },
    },
  });
  t.teardown(() => f.close());
  const session = await h2Connect(f.port, await f.tlsOptions());
  t.teardown(() => session.close());
  /** CPU of this process (caller, inbound and app) for one request whose trailers both ways hold runs of `fill`. */
  const cpuMs = async (fill: string) => {
    const before = process.cpuUsage();
    const req = session.request({ ':method': 'POST', ':path': '/x', 'x-fill': fill === ' ' ? 'space' : 'letter' }, { waitForTrailers: true });
    req.on('wantTrailers', () => req.sendTrailers({ 'x-pad': `a${fill.repeat(15_000)}a` }));
    req.end('body');
    let status = 0;
    let answered = -1;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('trailers', (tr) => (answered = String(tr['x-pad'] ?? '').length));
    req.resume();
    await new Promise<void>((resolve) => req.on('close', () => resolve()));
    const cpu = process.cpuUsage(before);
    return { status, answered, ms: (cpu.user + cpu.system) / 1000 };
  };
  // the least of three each, taken in turns: a collection or a descheduled moment is not the check's cost
  const letters = { ms: Infinity, status: 0, answered: 0 };
  const spaces = { ms: Infinity, status: 0, answered: 0 };
  for (let i = 0; i < 3; i++) {
    for (const [fill, least] of [['b', letters], [' ', spaces]] as const) {
      const one = await cpuMs(fill);
      Object.assign(least, { status: one.status, answered: one.answered, ms: Math.min(least.ms, one.ms) });
    }
  }
  t.equal(spaces.status, 200);
  t.equal(spaces.answered, 40_002, "the app's trailer reaches the caller whole");
  t.ok(spaces.ms < letters.ms + 60, `spaces ${spaces.ms.toFixed(0)} ms of CPU, letters ${letters.ms.toFixed(0)} ms (the expression: ~1.3 s more)`);
});
