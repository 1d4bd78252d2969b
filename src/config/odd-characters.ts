// Characters a config's reader cannot see: a no-break space pasted from a web page (YAML does
// not read it as a space, so `timeout:<NBSP>15s` is no key at all), a zero-width space or a
// byte order mark inside a key, a letter from another alphabet that looks like a Latin one
// (`servіce`, Cyrillic і). Messages that quote such text name them, as U+XXXX.

/** Spaces YAML does not read as spaces, and invisible format characters. */
const INVISIBLE = /[\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f\u2060\u3000\ufeff]/gu;

/** ` (it holds U+00A0, a no-break space...)` naming each invisible character in `text`, or ''. */
export function invisibleCharacters(text: string): string {
  const found = [...new Set(text.match(INVISIBLE) ?? [])];
  if (found.length === 0) return '';
  return ` (the line holds ${found.map(codePoint).join(', ')}, which YAML does not read as a space: type a plain space, or remove it)`;
}

/** ` (it holds U+0456, not plain ASCII)` for a key with characters outside printable ASCII, or ''. */
export function nonAsciiCharacters(key: string): string {
  const found = [...new Set(key.match(/[^\x20-\x7e]/gu) ?? [])];
  if (found.length === 0) return '';
  return ` (it holds ${found.slice(0, 5).map(codePoint).join(', ')}: config keys are plain ASCII)`;
}

function codePoint(char: string): string {
  return `U+${(char.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')}`;
}
