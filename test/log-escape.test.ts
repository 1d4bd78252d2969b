// Characters a terminal or log viewer acts on that JSON leaves raw (DEL, C1 controls such as
// 0x9B CSI, line separators, format characters: bidirectional controls such as U+061C, the
// zero-width ones, the BOM, tag characters) are written as \uXXXX escapes in every log line: the process logger (dist/logging.js in a child
// process, its real stdout) writes a hostile path and message escaped, the line is still the
// same JSON value.

import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { escapeUnsafe } from '../src/log-escape.js';

const DIST = new URL('../dist/', import.meta.url);
const HOSTILE = '/a\u009b[2J\u0085\u007f\u00e9\u202eevil\u2028x\u061cy\u2060z\ufeff\u200b\u{e0041}\ufe0f';

t.test('escapeUnsafe: only the unsafe characters, the JSON value unchanged', async (t) => {
  const line = JSON.stringify({ path: HOSTILE });
  const escaped = escapeUnsafe(line);
  t.notOk(/[\u007f-\u009f\u202e\u2028\u061c\u2060\ufeff\u200b\udb40\ufe0f]/.test(escaped), 'none left raw');
  t.match(escaped, /\\u009b\[2J\\u0085\\u007f\u00e9\\u202eevil\\u2028x\\u061cy\\u2060z\\ufeff\\u200b\\udb40\\udc41\\ufe0f/, 'each escaped (a tag character as its two units), é kept');
  t.same(JSON.parse(escaped), { path: HOSTILE }, 'the same JSON value');
  const plain = '{"msg":"ok"}';
  t.equal(escapeUnsafe(plain), plain);
});

t.test('the process logger writes them escaped on stdout', async (t) => {
  const script = join(t.testdir(), 'log.mjs');
  await writeFile(script, `import { createLogger } from ${JSON.stringify(new URL('logging.js', DIST).href)};\ncreateLogger('info').warn({ path: ${JSON.stringify(HOSTILE)} }, ${JSON.stringify(`refused ${HOSTILE}`)});\n`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((resolve) => child.on('close', resolve));
  const out = Buffer.concat(chunks).toString('utf8');
  t.notOk(/[\u007f-\u009f\u202e\u2028\u061c\u2060\ufeff\u200b\udb40\ufe0f]/.test(out), 'no C1 control, line separator, format character or variation selector raw on stdout');
  const line = JSON.parse(out.trim()) as { path: string; msg: string };
  t.equal(line.path, HOSTILE, 'read back as sent');
  t.equal(line.msg, `refused ${HOSTILE}`);
});
