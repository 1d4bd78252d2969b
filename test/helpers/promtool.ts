// Test helper: `promtool check metrics` on a /metrics page (Debian's prometheus package has
// promtool; `make tools` installs it). Not installed is a failure that says so, never a skip.

import { execFile } from 'node:child_process';

export function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], { timeout: 10_000 }, (err, stdout, stderr) => {
      const code = (err as { code?: number | string } | null)?.code;
      if (code === 'ENOENT') resolve({ code: 127, output: "promtool is not installed: run `make tools` (Debian's prometheus package has it)" });
      else resolve({ code: err ? Number(code ?? 1) : 0, output: stdout + stderr });
    });
    child.stdin?.end(text);
  });
}
