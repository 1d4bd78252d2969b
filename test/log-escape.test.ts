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
import { stderrLine } from '../src/cli/stderr-line.js';

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

t.test("the rest of Unicode's invisible characters (Default_Ignorable_Code_Point), and stderr lines alike", async (t) => {
  // Hangul fillers beside U+3164, Khmer's invisible vowels, unassigned tag-block code points, U+2065, U+FFF0
  const invisible = ['\u115f', '\u1160', '\uffa0', '\u17b4', '\u17b5', '\u{e0000}', '\u{e0080}', '\u2065', '\ufff0'];
  for (const c of invisible) {
    const code = c.codePointAt(0)!.toString(16);
    t.notOk(escapeUnsafe(JSON.stringify({ path: `/a${c}b` })).includes(c), `U+${code} escaped in a log line`);
    t.notOk(stderrLine(`bad ${c} name`).includes(c), `U+${code} escaped on stderr`);
  }
  // what stderr lines missed: they copied the bidi controls only
  for (const c of ['\u200b', '\ufeff', '\u2060', '\u00ad', '\u061c', '\u{e0041}']) t.notOk(stderrLine(`x${c}y`).includes(c), `U+${c.codePointAt(0)!.toString(16)} escaped on stderr`);
  // joiners and style selectors are how some text reads: stderr keeps them (a log line's JSON reads them back)
  for (const text of ['اسناد\u200cها', 'क्\u200dष', '\u2764\ufe0f', '\u{1f469}\u200d\u{1f4bb}']) t.equal(stderrLine(`open /data/${text}: no such file`), `open /data/${text}: no such file`, `${JSON.stringify(text)} kept on stderr`);
  // but not where they only hide a difference: after a name's last letter, or alone
  for (const text of ['svc/admin\u200c', 'svc/admin\u200d:', 'admin\ufe0f', '\u200c']) t.notOk(stderrLine(`${text} refused`).match(/[\u200c\u200d\ufe0f]/), `${JSON.stringify(text)} escaped on stderr`);
  t.equal(stderrLine('tag \u{e0041} here'), 'tag \\udb40\\udc41 here', 'a tag character as its two units, as JSON writes it');
  t.equal(stderrLine('caf\u00e9\tok'), 'caf\u00e9\tok', 'letters and a tab stay');
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
