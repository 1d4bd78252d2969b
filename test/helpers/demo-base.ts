// Test helper for tests that run the demo runner (dist/demo/run-demo.js) on ports of their own:
// a DEMO_PORT_BASE whose eight ports are free, and the runner's path.

import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { demoPorts } from '../../src/demo/ports.js';

/** The built demo runner, as `make demo` starts it. */
export const DEMO_RUNNER = fileURLToPath(new URL('../../dist/demo/run-demo.js', import.meta.url));

/** Whether 127.0.0.1:`port` can be bound now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A demo port base whose eight ports were all free a moment ago. Drawn below the ephemeral
 * range (32768 and up here): the demo's ports are fixed, and a client socket of a test running
 * beside this one may take an ephemeral port at any time; the demo tests' own bases (15000,
 * and demo-ports.test.ts's 2000-6500) stay clear of 20000-29243 too.
 */
export async function freeDemoBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20_000 + Math.floor(Math.random() * 5_800);
    if ((await Promise.all(Object.values(demoPorts(base)).map(bindable))).every(Boolean)) return base;
  }
  throw new Error('no demo port base with all eight ports free');
}
