// The top-level keys a JSON log line repeats ({"component":"workers",...,"component":"reload"}).
// JSON.parse keeps the last of them and says nothing, so the line looks whole to a test, while
// log stores that index by field (Elasticsearch) refuse the document. A scan of the text itself:
// strings skipped, keys taken at depth 1.

export function repeatedTopLevelKeys(text: string): string[] {
  const seen = new Set<string>();
  const repeated: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === '"') {
      const start = i + 1;
      for (i = start; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      // a key: at depth 1, followed by a colon
      if (depth === 1 && text[i + 1] === ':') {
        const key = text.slice(start, i);
        if (seen.has(key)) repeated.push(key);
        seen.add(key);
      }
    }
  }
  return repeated;
}
