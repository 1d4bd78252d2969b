// src/schema: requests that a server behind reads otherwise than the check does are refused, not
// passed as the operation they seem to be: a raw `#` (an app that parses the target as a URL
// drops it and all after it), an encoded slash or backslash (WSGI apps get the path decoded),
// another case (Express and ASP.NET route without regard to it), and query keys that some
// servers read as a declared parameter (`limit[]` to qs, PHP and Rack, `LIMIT` to ASP.NET,
// `;` as a separator to Rack 2), a method override (`X-HTTP-Method-Override: DELETE` on a
// POST) the spec does not declare, a JSON body with a Content-Encoding (checked as sent,
// inflated by the app), a declared header spelled with `_` (CGI and WSGI read `X_Owner` as
// X-Owner), and a last `.ext` (Rails and Spring read `/orders/mine.json` as /orders/mine). What reads the same everywhere still passes. A path parameter
// whose %-escapes are not UTF-8 (`%80%2Fadmin`) is refused: the check read it undecoded, WSGI apps as bytes.
// A segment with two parameters (`{name}-{year}`) is checked as split greedily and as Express splits it.
// A path override (`X-Original-URL`, `X-Rewrite-URL`: old Symfony, Zend, IIS rewrite) the operation does not declare is refused.

import t from 'tap';
import { join } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';

const SPEC = `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /orders/mine:
    get:
      parameters:
        - {name: x-owner, in: header, required: true, schema: {type: string, enum: [me]}}
      responses: {"200": {description: ok}}
  /orders/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, maxLength: 40}}
      responses: {"200": {description: ok}}
    post:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
  /legacy:
    post:
      parameters:
        - {name: X-HTTP-Method-Override, in: header, schema: {type: string, enum: [PATCH]}}
        - {name: _method, in: query, schema: {type: string, enum: [PATCH]}}
      responses: {"200": {description: ok}}
  /orders/{id}/refund:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
        - {name: x-owner, in: header, required: true, schema: {type: string, enum: [me]}}
      responses: {"200": {description: ok}}
  /Reports/{name}:
    get:
      parameters:
        - {name: name, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
  /reports/daily:
    get:
      parameters:
        - {name: x-owner, in: header, required: true, schema: {type: string, enum: [me]}}
      responses: {"200": {description: ok}}
  /search:
    get:
      parameters:
        - {name: q, in: query, schema: {type: string, maxLength: 20}}
        - {name: limit, in: query, schema: {type: integer, maximum: 100}}
        - {name: tag, in: query, schema: {type: array, items: {type: string}}}
        - {name: filter, in: query, style: deepObject, schema: {type: object}}
        - {name: per_page, in: query, schema: {type: integer, maximum: 100}}
      responses: {"200": {description: ok}}
  /catalog:
    get:
      parameters:
        - {name: "ids[]", in: query, schema: {type: array, maxItems: 2, items: {type: string, maxLength: 3}}}
        - {name: "page[size]", in: query, schema: {type: integer, maximum: 100}}
        - {name: "page[number]", in: query, schema: {type: integer}}
        - {name: "x[][y]", in: query, schema: {type: string, maxLength: 3}}
      responses: {"200": {description: ok}}
`;

t.test('a path another server reads as another operation is a path violation', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const check = (path: string) => spec.check('GET', path, '', {}, false).violation;
  // a raw # (Node's parser and both HTTP/2 codecs pass it): Express reads /orders/mine
  t.same(check('/orders/mine#x'), { kind: 'path', message: 'path: /orders/mine#x is not a plain absolute path: it holds a # (a fragment is not sent)' }, 'a raw #');
  // an encoded control character is named, not told as a dot segment
  t.same(check('/orders/%0A'), { kind: 'path', message: 'path: /orders/%0A is not a plain absolute path: it holds the control character %0A (LF)' }, 'an encoded LF');
  t.equal(check('/orders/7%23x'), undefined, 'an encoded # is data: the id 7#x');
  // an encoded slash: Flask and Django are handed /orders/1/refund
  t.same(check('/orders/1%2Frefund'), { kind: 'path', message: 'path: /orders/1%2Frefund reads as /orders/{id}/refund to an app that decodes %2F or reads \\ as /' }, 'an encoded slash');
  t.same(check('/orders/1%2frefund')?.kind, 'path', 'in lower-case hex too');
  t.same(check('/orders/1\\refund')?.kind, 'path', 'a backslash');
  t.same(check('/orders/1%5Crefund')?.kind, 'path', 'an encoded backslash');
  t.equal(check('/orders/group%2Fproject'), undefined, 'an encoded slash that reads as no other operation is a value (GitLab-style ids)');
  // another case: Express (by default) and ASP.NET serve /orders/MINE as /orders/mine
  t.same(check('/orders/MINE'), { kind: 'path', message: 'path: /orders/MINE reads as /orders/mine to an app that routes paths without regard to case' }, 'another case');
  t.same(check('/orders/Mine')?.kind, 'path');
  // a spec whose templates are all lower case: the path's capitals alone call for the case reading
  const lowerOnly = SPEC.replace(/  \/Reports\/\{name\}:[\s\S]*?(?=  \/reports\/daily:)/, '');
  const lower = await CompiledSpec.load(join(t.testdir({ 'lower.yaml': lowerOnly }), 'lower.yaml'));
  t.same(lower.check('GET', '/orders/MINE', '', {}, false).violation?.kind, 'path');
  t.same(lower.check('GET', '/orders/%4d%49%4e%45', '', {}, false).violation?.kind, 'path', 'capitals spelled as escapes, with no capital as sent');
  t.equal(check('/orders/Mine2'), undefined, 'an id with capitals that is no literal path stays an id');
  t.same(check('/Reports/DAILY')?.message, 'path: /Reports/DAILY reads as /reports/daily to an app that routes paths without regard to case', 'a template with capitals');
  t.equal(check('/Reports/weekly'), undefined);
  // a format suffix: Rails' optional (.:format) on every route, Spring's suffix patterns
  t.same(check('/orders/mine.json'), { kind: 'path', message: 'path: /orders/mine.json reads as /orders/mine to an app that takes a last .ext for a format (Rails, Spring\'s suffix patterns)' }, 'a format suffix');
  t.same(check('/orders/mine.json.bak')?.kind, 'path', 'Spring\'s mine.* from the first dot');
  t.equal(check('/orders/42.json'), undefined, 'a suffix that reads as no other operation is a value');
  t.equal(check('/orders/.json'), undefined, 'a dot first in the segment is no suffix');
  t.same(spec.check('GET', '/orders/mine', '', { 'x-owner': 'me' }, false).violation, undefined, 'the literal operation itself passes');
  t.same(check('/orders/mine')?.kind, 'header', 'and is held to its own rules');
});

t.test('query keys and separators another server reads as a declared parameter are refused or checked too', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const query = (q: string) => spec.check('GET', '/search', q, {}, false).violation;
  t.equal(query('q=books&limit=5&tag=a&tag=b'), undefined, 'as declared: passes');
  const spelled = (key: string) => ({ kind: 'query', message: `query/limit: is given as ${key}, which some servers read as limit (brackets: qs, PHP, Rack; another case: ASP.NET; . or space for _, an unclosed [ or a NUL: PHP); send it as limit` });
  // Express's default query parser (qs) makes req.query.limit ['1000']: parseInt reads 1000
  t.same(query('limit[]=1000'), spelled('limit[]'), 'brackets: qs, PHP, Rack');
  t.same(query('limit%5B%5D=1000'), spelled('limit[]'), 'encoded brackets');
  t.same(query('limit[x]=1000'), spelled('limit[x]'), 'an object key');
  // qs reads a leading bracket pair as the name (req.query.limit), Rack 2 the first run of
  // characters that are not brackets; PHP a [ never closed as _, and a name up to a NUL
  t.same(query('[limit]=1000'), spelled('[limit]'), 'a leading bracket pair: qs, Rack');
  t.same(query('%5Blimit%5D=1000'), spelled('[limit]'), 'encoded');
  t.same(query('limit=5&[limit]=1000'), spelled('[limit]'), 'beside the declared spelling: qs makes it an array');
  t.same(query('[limit][x]=1000'), spelled('[limit][x]'), 'an object under it');
  t.same(query(']]limit=1000'), spelled(']]limit'), 'leading ] (Rack 2)');
  t.same(query('limit%00=1000'), spelled('limit\\u0000'), 'a NUL ends the name: PHP');
  t.same(query('limit%00x=1000'), spelled('limit\\u0000x'), 'and what follows it is dropped');
  t.same(query('per[page=1000')?.message, 'query/per_page: is given as per[page, which some servers read as per_page (brackets: qs, PHP, Rack; another case: ASP.NET; . or space for _, an unclosed [ or a NUL: PHP); send it as per_page', 'an unclosed [: PHP reads _');
  t.equal(query('[other]=1&limitx=2&x[limit]=3&lim[it]=4'), undefined, 'keys no server reads as a declared parameter pass');
  t.same(query('LIMIT=1000'), spelled('LIMIT'), 'another case: ASP.NET binds it to limit');
  t.same(query('limit=5&Limit=1000'), spelled('Limit'));
  // PHP (Laravel, Symfony) reads . and spaces in a key as _: per.page is per_page to it
  t.same(query('per.page=1000')?.message, 'query/per_page: is given as per.page, which some servers read as per_page (brackets: qs, PHP, Rack; another case: ASP.NET; . or space for _, an unclosed [ or a NUL: PHP); send it as per_page', '. for _: PHP');
  t.same(query('per+page=1000')?.kind, 'query', 'a space for _ (+ in a query)');
  t.same(query('%20per_page=1000')?.kind, 'query', 'a leading space, which PHP drops');
  t.equal(query('per_page=50'), undefined);
  t.equal(query('filter[color]=red'), undefined, "a deepObject parameter's keys (not checked) pass");
  t.equal(query('other[]=1&Other=2'), undefined, 'keys of no declared parameter pass');
  // Rack 2 (Rails 6), Go before 1.17 and Python before 3.9.2 split at ; as at &
  t.same(query('q=x;limit=1000'), { kind: 'query', message: 'query/limit: must be <= 100 (with ; read as &, as Rack 2 and Go before 1.17 read it)' }, '; as a separator: the other reading is checked too');
  t.same(query('q=x;q=y')?.message, 'query/q: must be given once (it is not an array) (with ; read as &, as Rack 2 and Go before 1.17 read it)');
  t.equal(query('q=a;b'), undefined, 'a ; that hides no parameter passes');
  t.same(query('q=books#&limit=1000'), { kind: 'query', message: 'query: a # (a fragment) is not sent in a request; send it encoded, as %23' }, 'a raw # in the query');
  t.equal(query('q=a%23b'), undefined, 'an encoded # is data');
});

t.test('declared names with brackets: keys that qs and PHP nest where they land are refused', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const query = (q: string) => spec.check("GET", "/catalog", q, {}, false).violation;
  t.equal(query('ids[]=a&ids[]=b&page[size]=50&page[number]=2'), undefined, 'as declared: passes');
  t.same(query('ids[]=toolong')?.message, 'query/ids[]/0: must NOT have more than 3 characters', 'as declared, checked');
  const spelled = (key: string, name: string) => `query/${name}: is given as ${key}, which some servers read as ${name} (brackets: qs, PHP, Rack; another case: ASP.NET; . or space for _, an unclosed [ or a NUL: PHP); send it as ${name}`;
  // qs and PHP read each of these into ids, or page.size, unchecked
  for (const [q, key, name] of [
    ['ids[0]=toolong', 'ids[0]', 'ids[]'],
    ['ids[x]=toolong', 'ids[x]', 'ids[]'],
    ['ids[]x=toolong', 'ids[]x', 'ids[]'],
    ['ids[]=a&ids[]=b&ids[9]=c', 'ids[9]', 'ids[]'],
    ['ids=toolong', 'ids', 'ids[]'],
    ['page[size]x=1000', 'page[size]x', 'page[size]'],
    ['page[size][]=1000', 'page[size][]', 'page[size]'],
    ['PAGE[size]=1000', 'PAGE[size]', 'page[size]'],
    // qs takes a leading [..] group as the name and every later group, text between skipped
    ['[page]x[size]=1000', '[page]x[size]', 'page[size]'],
    ['[ids]x[]=a&[ids]x[]=b&[ids]x[]=c', '[ids]x[]', 'ids[]'],
    // Rack 2 reads every run of characters that are not brackets
    [']ids[]=toolong', ']ids[]', 'ids[]'],
    [']page[size]=1000', ']page[size]', 'page[size]'],
    // qs reads a run of [] as one: x[][][y] is x[][y]
    ['x[][][y]=toolong', 'x[][][y]', 'x[][y]'],
    ['x[][y]=ok&x[][][][y]=toolong', 'x[][][][y]', 'x[][y]'],
  ] as const) {
    t.same(query(q)?.message, spelled(key, name), `${q}: refused`);
  }
  t.same(query('page[other]=1&idsx=2&id[]=3&page[a]x[size]=4'), undefined, 'keys that land elsewhere pass (page.a.size to qs)');
  for (const q of ['page=2', 'page[]=2', 'page[=2', '[page]=2']) t.same(query(q), undefined, `${q}: qs reads page as a value or a list, nothing at page.size: passes`);
});

t.test('a declared query value with a %-escape that is not UTF-8 is refused: servers decode it three ways', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const query = (q: string) => spec.check('GET', '/search', q, {}, false).violation;
  const refused = (name: string) => ({ kind: 'query', message: `query/${name}: holds a %-escape that is not UTF-8, or a stray % (servers read it differently: URLSearchParams as U+FFFD, qs undecoded); encode a % as %25` });
  // URLSearchParams: 21 U+FFFD (maxLength 20 fails); with 5, 5 characters; qs keeps 15 undecoded
  t.same(query('q=%FF%FF%FF%FF%FF'), refused('q'), 'bytes that are no UTF-8: 5 characters to the check, 15 to qs');
  t.same(query('q=%C3'), refused('q'), 'a UTF-8 sequence cut short');
  t.same(query('q=caf%E9'), refused('q'), 'Latin-1');
  t.same(query('tag=a&tag=%zz%41'), refused('tag'), 'a stray % beside an escape: %zzA to one reader, %zz%41 to the other');
  t.same(query('other=x;limit=%FF1')?.message, 'query/limit: holds a %-escape that is not UTF-8, or a stray % (servers read it differently: URLSearchParams as U+FFFD, qs undecoded); encode a % as %25 (with ; read as &, as Rack 2 and Go before 1.17 read it)', 'in the ; reading too');
  t.equal(query('q=caf%C3%A9'), undefined, 'UTF-8 escapes pass');
  t.equal(query('q=100%'), undefined, 'a stray % with no escape reads the same everywhere');
  t.equal(query('q=a+b%2B'), undefined);
  t.equal(query('other=%FF&q=x'), undefined, 'a parameter the spec does not declare is not checked');
});

t.test('a path parameter with a %-escape that is not UTF-8 is refused: WSGI apps and Go decode it to bytes', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const path = (p: string) => spec.check('GET', p, '', {}, false).violation;
  const refused = { kind: 'path', message: 'path/id: holds a %-escape that is not UTF-8 (servers read it differently); encode a % as %25' };
  // %80%2Fadmin stayed the text `%80%2Fadmin` to the check (11 characters, no slash); Flask
  // and gorilla/mux decode it and route /orders/<byte>/admin, an operation the spec does not have
  t.same(path('/orders/%80%2Fadmin'), refused, 'a byte that is no UTF-8 beside an encoded slash');
  t.same(path('/orders/%C3%2Fadmin'), refused, 'a UTF-8 sequence cut short by it');
  t.same(path('/orders/caf%E9'), refused, 'Latin-1');
  t.same(path(`/orders/${'%FF'.repeat(20)}`), refused, '20 bytes, 60 characters undecoded (maxLength 40)');
  t.equal(path('/orders/caf%C3%A9'), undefined, 'UTF-8 escapes pass');
  t.equal(path('/orders/%2580'), undefined, 'an encoded % is the text %80');
});

t.test('a segment with two parameters is checked as split both ways: greedy, and as Express splits it', async (t) => {
  const spec = await CompiledSpec.load(join(t.testdir({ 'api.yaml': `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /reports/{name}-{year}:
    get:
      parameters:
        - {name: name, in: path, required: true, schema: {type: string}}
        - {name: year, in: path, required: true, schema: {type: integer, minimum: 2000}}
      responses: {"200": {description: ok}}
  /range/{from}.{to}:
    get:
      parameters:
        - {name: from, in: path, required: true, schema: {type: string}}
        - {name: to, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
  /pair/{a}~{b}:
    get:
      parameters:
        - {name: a, in: path, required: true, schema: {type: string, maxLength: 3}}
        - {name: b, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
  /files/{name}.{ext}:
    get:
      parameters:
        - {name: name, in: path, required: true, schema: {type: string}}
        - {name: ext, in: path, required: true, schema: {type: string, enum: [gz, zip]}}
      responses: {"200": {description: ok}}
  /d/{a}-{b}.{c}:
    get:
      parameters:
        - {name: a, in: path, required: true, schema: {type: string}}
        - {name: b, in: path, required: true, schema: {type: string, pattern: '^[a-z0-9]+$'}}
        - {name: c, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
` }), 'api.yaml'));
  const path = (p: string) => spec.check('GET', p, '', {}, false).violation;
  t.equal(path('/reports/sales-2020'), undefined, 'one separator: both splits alike');
  t.same(path('/reports/sales-1999')?.message, 'path/year: must be >= 2000', 'the greedy split is checked');
  // greedy: name a-1999, year 2020; Express and chi hand the app year `1999-2020`, which
  // parseInt reads as 1999, under the minimum
  t.same(path('/reports/a-1999-2020'), { kind: 'path', message: 'path/year: must be integer (as Express up to 4.21.1 reads /reports/a-1999-2020, each parameter of a segment ending at the first separator)' }, 'the split at the first separator is held to the same rules');
  t.same(path('/reports/a-b-2020')?.kind, 'path', 'a name with the separator in it is read otherwise by Express up to 4.21.1 (and chi): refused');
  // Express: a parameter after a `.` holds no dot, so `archive.tar.gz` is archive.tar and gz to it, as to the greedy split
  t.equal(path('/files/archive.tar.gz'), undefined, 'a dotted name before .{ext}: one reading');
  t.same(path('/files/archive.gz.tar')?.kind, 'path', 'and its extension is checked');
  // both the greedy and the first-separator splits give b=ok; Express gives b `ok.z'or'1'-ok`
  t.same(path("/d/x-ok.z'or'1'-ok.txt")?.message, `path/b: must match pattern "^[a-z0-9]+$" (as Express up to 4.21.1 reads /d/x-ok.z'or'1'-ok.txt, each parameter of a segment ending at the first separator)`, 'Express\'s own reading of a parameter before a .{x}');
  t.equal(path('/range/a.b.c'), undefined, 'both splits pass the rules: passes');
  t.same(path('/pair/abc~d~e')?.message, 'path/a: must NOT have more than 3 characters', 'what only the greedy split breaks is refused as before (a: abc~d)');
  t.equal(path('/pair/abc~d'), undefined);
});

t.test('a method override the operation does not declare is refused: the app would run another operation', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const post = (path: string, query: string, headers: Record<string, string>) => spec.check('POST', path, query, headers, false).violation;
  // Express's method-override (and Google's APIs, Symfony, Laravel) run DELETE /orders/1: not in the spec
  t.same(post('/orders/1', '', { 'x-http-method-override': 'DELETE' }), {
    kind: 'header',
    message: 'header/x-http-method-override: asks for DELETE, which an app with a method override runs instead of POST, unchecked: send the DELETE request itself',
  });
  t.same(post('/orders/1', '', { 'x-http-method': 'delete' })?.kind, 'header', 'X-HTTP-Method, in any case');
  t.same(post('/orders/1', '', { 'x-method-override': 'PUT' })?.kind, 'header', 'X-Method-Override');
  t.same(post('/orders/1', '_method=DELETE', {}), {
    kind: 'query',
    message: 'query/_method: asks for DELETE, which an app with a method override runs instead of POST, unchecked: send the DELETE request itself',
  }, "?_method (Spring's HiddenHttpMethodFilter reads the query too)");
  t.same(post('/orders/1', '%5Fmethod=DELETE', {})?.kind, 'query', 'also spelled with escapes');
  t.equal(post('/orders/1', '_method=post', { 'x-http-method-override': 'POST' }), undefined, 'the method itself is no override');
  t.equal(post('/legacy', '_method=PATCH', { 'x-http-method-override': 'PATCH' }), undefined, 'an override the operation declares passes');
  t.same(post('/legacy', '', { 'x-http-method-override': 'DELETE' }), { kind: 'header', message: 'header/x-http-method-override: must be one of "PATCH"' }, "and is held to the declared parameter's schema");
});

t.test('a path override (X-Original-URL, X-Rewrite-URL) the operation does not declare is refused: the app would route another path', async (t) => {
  const spec = await CompiledSpec.load(join(t.testdir({ 'api.yaml': SPEC.replace('paths:\n', 'paths:\n  /rewritten:\n    get:\n      parameters:\n        - {name: X-Original-URL, in: header, schema: {type: string, enum: [/rewritten]}}\n      responses: {"200": {description: ok}}\n') }), 'api.yaml'));
  const get = (path: string, headers: Record<string, string>) => spec.check('GET', path, '', headers, false).violation;
  // old Symfony, Zend Framework 1 and IIS's URL Rewrite route the header's path
  t.same(get('/orders/1', { 'x-original-url': '/admin/delete-everything' }), {
    kind: 'header',
    message: 'header/x-original-url: names the path /admin/delete-everything, which an app with URL rewriting (old Symfony and Zend, IIS\'s URL Rewrite) routes instead, unchecked: send the request to that path itself',
  });
  t.same(get('/orders/1', { 'x-rewrite-url': '/admin' })?.kind, 'header', 'X-Rewrite-URL');
  t.same(get('/orders/1', { x_original_url: '/admin' })?.message.startsWith('header/x-original-url (sent as "x_original_url"): names the path /admin'), true, 'as CGI servers read X_Original_URL');
  t.equal(get('/orders/1', { 'x-original-host': 'example' }), undefined, 'other X- headers pass');
  t.equal(get('/rewritten', { 'x-original-url': '/rewritten' }), undefined, 'a path override the operation declares passes');
  t.same(get('/rewritten', { 'x-original-url': '/admin' })?.message, 'header/x-original-url: must be one of "/rewritten"', "and is held to the declared parameter's schema");
});

t.test('a JSON body with a content coding is refused: an app that decodes it would parse another document', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC.replace('paths:\n', 'paths:\n  /items:\n    post:\n      requestBody: {content: {application/json: {schema: {type: object}}}}\n      responses: {"200": {description: ok}}\n') });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const post = (headers: Record<string, string>) => spec.check('POST', '/items', '', { 'content-type': 'application/json', ...headers }, true);
  for (const coding of ['gzip', 'deflate', 'br', 'GZIP ', 'identity, gzip']) {
    t.same(post({ 'content-encoding': coding }).violation, { kind: 'content_type', message: `content_type: a JSON body is checked as sent, so it cannot have a Content-Encoding (${coding})` }, `Content-Encoding: ${coding}`);
  }
  t.equal(post({ 'content-encoding': 'identity' }).violation, undefined, 'identity is no coding');
  t.ok(post({}).body, 'without one, the body is validated as before');
});

t.test('a declared header spelled with _ for - is refused: CGI and WSGI servers read it as the declared one', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const check = (headers: Record<string, string>) => spec.check('GET', '/orders/mine', '', headers, false).violation;
  const message = 'header/x-owner: is given as x_owner, which CGI and WSGI servers read as x-owner; send it as x-owner';
  t.same(check({ 'x-owner': 'me', x_owner: 'evil' }), { kind: 'header', message }, 'both spellings: the server picks one');
  t.same(check({ x_owner: 'me' }), { kind: 'header', message }, 'the _ spelling alone');
  t.equal(check({ 'x-owner': 'me', x_other: '1' }), undefined, 'a name with _ that is no declared header passes');
  t.equal(spec.check('GET', '/orders/7', '', { x_owner: 'evil' }, false).violation, undefined, 'an operation without header parameters is not concerned');
});

t.test('a format suffix: a template that spells the extension keeps the path; one with {id}.{format} does not', async (t) => {
  const spec = await CompiledSpec.load(
    join(
      t.testdir({
        'api.yaml': `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /reports/mine:
    get:
      parameters:
        - {name: x-owner, in: header, required: true, schema: {type: string, enum: [me]}}
      responses: {"200": {description: ok}}
  /reports/{id}.{format}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
        - {name: format, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
  /files/{name}.json:
    get:
      parameters:
        - {name: name, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
  /users/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
  /users/{id}.{format}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
        - {name: format, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
  /files/{name}:
    get:
      parameters:
        - {name: name, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
`,
      }),
      'api.yaml',
    ),
  );
  const check = (path: string) => spec.check('GET', path, '', {}, false).violation;
  // Rails serves the literal route first; Spring ranks /reports/mine.* above {id}.{format}
  t.same(check('/reports/mine.json')?.kind, 'path', '{id}.{format} spells no extension: /reports/mine to a format-taking app');
  t.equal(check('/reports/42.json'), undefined, 'another id is that template');
  t.equal(check('/files/a.json'), undefined, 'a template that spells .json is that path to every app');
  // documented with and without the format: one action to such an app (a review: refused)
  t.equal(check('/users/42.json'), undefined, '/users/{id}.{format} beside /users/{id}: passes');
});
