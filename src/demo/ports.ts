// The demo's ports, all derived from one base (DEMO_PORT_BASE, default 15000), so a clash with
// another process can be escaped by moving the whole demo at once. The offsets keep the
// defaults the docs have always named (sidecars 15xxx, apps and CA 18xxx). With a moved base
// the demo writes copies of config/demo/*.yaml with the moved ports and runs those.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const DEFAULT_BASE = 15000;
const OFFSETS = {
  ordersAdmin: 0,
  frontendOutbound: 1,
  frontendAdmin: 100,
  ordersInbound: 443,
  frontendInbound: 444,
  ordersApp: 3080,
  frontendApp: 3081,
  ca: 3443,
} as const;
const SPAN = OFFSETS.ca;
export type DemoPorts = { readonly [K in keyof typeof OFFSETS]: number };

/** The base from DEMO_PORT_BASE (empty or unset: the default); a bad value is one clear line. */
export function demoPortBase(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_BASE;
  const base = Number(value);
  if (!Number.isInteger(base) || base < 1024 || base + SPAN > 65535) {
    throw new Error(`DEMO_PORT_BASE=${value}: expected a whole number from 1024 to ${65535 - SPAN} (the demo uses ports base to base+${SPAN})`);
  }
  return base;
}

export function demoPorts(base: number): DemoPorts {
  return Object.fromEntries(Object.entries(OFFSETS).map(([name, offset]) => [name, base + offset])) as unknown as DemoPorts;
}

/** What to say after a port clash: which variable moves the demo, and where it is now. */
export function portAdvice(base: number): string {
  return `stop the process that holds it, or ${moveAdvice(base)}`;
}

/** How to run the demo elsewhere: `move every demo port with DEMO_PORT_BASE=N (ports N to N+3443; now 15000)`. */
export function moveAdvice(base: number): string {
  return `move every demo port with DEMO_PORT_BASE=N (ports N to N+${SPAN}; now ${base})`;
}

/**
 * The folder of the configs to run: config/demo itself at the default base, else `outDir` with
 * copies whose 127.0.0.1 ports are moved (a port the table does not know is an error, so a
 * config edited without this table cannot silently keep a fixed port).
 */
export async function demoConfigDir(configDir: string, ports: DemoPorts, outDir: string): Promise<string> {
  const defaults = demoPorts(DEFAULT_BASE);
  if (ports.ca === defaults.ca) return configDir;
  const moved = new Map(Object.keys(OFFSETS).map((name) => [defaults[name as keyof DemoPorts], ports[name as keyof DemoPorts]]));
  await mkdir(outDir, { recursive: true });
  for (const file of ['ca.yaml', 'orders.yaml', 'frontend.yaml']) {
    const text = await readFile(join(configDir, file), 'utf8');
    const out = text.replace(/127\.0\.0\.1:(\d+)/g, (_all, port: string) => {
      const to = moved.get(Number(port));
      if (to === undefined) throw new Error(`${join(configDir, file)} names 127.0.0.1:${port}, which is not a demo port (src/demo/ports.ts)`);
      return `127.0.0.1:${to}`;
    });
    await writeFile(join(outDir, file), `# written by the demo from ${join(configDir, file)}: DEMO_PORT_BASE moved its ports\n${out}`);
  }
  return outDir;
}
