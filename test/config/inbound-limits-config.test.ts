// inbound.limits (src/config/inbound-limits-config.ts): the resource caps that were constants
// in code are keys now, each defaulting to the value it had, each bounded, each refused with a
// line that names the key and the allowed range.

import t from 'tap';
import { parseYamlSource } from '../../src/config/yaml-source.js';
import { DEFAULT_INBOUND_LIMITS, readInbound } from '../../src/config/inbound-config.js';

function parse(limits: string) {
  const source = parseYamlSource('inbound.yaml', `listen: 127.0.0.1:0\napp: http://127.0.0.1:8080\nlimits: ${limits}\n`);
  const config = readInbound(source.root!, 'mesh.local');
  return { config, issues: source.issues.map((i) => `${i.line}:${i.column} ${i.path} ${i.message}`) };
}

t.test('defaults: the values the code had', async (t) => {
  t.same(parse('{}').config?.limits, {
    maxConcurrentStreams: 250,
    maxHeaderListSize: 16384,
    maxResetsPer10s: 200,
    maxConnectionsPerCaller: 1024,
    maxHandshakesPerAddress: 256,
    maxHandshakes: 1024,
    maxBufferedPerCaller: 64 * 1024 * 1024,
    maxPipelined: 32,
    maxAppConnections: 256,
    maxAppWaiting: 1000,
  });
  t.same(parse('{}').config?.limits, DEFAULT_INBOUND_LIMITS);
});

t.test('set: each key read, sizes with units', async (t) => {
  const { config, issues } = parse('{maxConnectionsPerCaller: 8, maxHandshakesPerAddress: 4, maxHandshakes: 8, maxBufferedPerCaller: 1MiB, maxPipelined: 2, maxAppConnections: 16, maxAppWaiting: 0}');
  t.same(issues, []);
  t.same(config?.limits, { ...DEFAULT_INBOUND_LIMITS, maxConnectionsPerCaller: 8, maxHandshakesPerAddress: 4, maxHandshakes: 8, maxBufferedPerCaller: 1024 * 1024, maxPipelined: 2, maxAppConnections: 16, maxAppWaiting: 0 });
  t.equal(parse('{maxBufferedPerCaller: 4GiB}').config?.limits?.maxBufferedPerCaller, 4 * 1024 ** 3);
  t.equal(parse('{maxBufferedPerCaller: 65536}').config?.limits?.maxBufferedPerCaller, 65536);
});

t.test('bad values: refused with key, place and range', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['{maxConnectionsPerCaller: 0}', /limits\.maxConnectionsPerCaller .*at least 1/],
    ['{maxConnectionsPerCaller: 1000001}', /limits\.maxConnectionsPerCaller .*too large: allowed 1 to 1000000 connections per caller/],
    ['{maxHandshakesPerAddress: 2.5}', /limits\.maxHandshakesPerAddress .*whole number/],
    ['{maxHandshakesPerAddress: "many"}', /limits\.maxHandshakesPerAddress /],
    ['{maxHandshakes: 0}', /limits\.maxHandshakes /],
    ['{maxBufferedPerCaller: 1KiB}', /limits\.maxBufferedPerCaller .*too small: at least 64KiB/],
    ['{maxBufferedPerCaller: 5GiB}', /limits\.maxBufferedPerCaller .*from 64KiB to 4GiB/],
    ['{maxBufferedPerCaller: lots}', /limits\.maxBufferedPerCaller .*not a size/],
    ['{maxPipelined: 1025}', /limits\.maxPipelined .*allowed 1 to 1024/],
    ['{maxAppConnections: 65536}', /limits\.maxAppConnections .*allowed 1 to 65535/],
    ['{maxAppWaiting: -1}', /limits\.maxAppWaiting .*from 0 to 1000000/],
    ['{maxAppWaiting: 1e7}', /limits\.maxAppWaiting .*from 0 to 1000000/],
  ];
  for (const [text, want] of cases) {
    const { config, issues } = parse(text);
    t.equal(config, undefined, `${text}: refused`);
    t.equal(issues.length, 1, `${text}: one issue`);
    t.match(issues[0], want, `${text}: ${issues[0]}`);
    t.match(issues[0], /^3:\d+ /, `${text}: the line and column of the key`);
  }
  // an unknown key (the contract's name for it in code) is an issue of its own, which fails the load
  const unknown = parse('{maxAppSockets: 3}');
  t.equal(unknown.issues.length, 1);
  t.match(unknown.issues[0], /maxAppSockets/);
});
