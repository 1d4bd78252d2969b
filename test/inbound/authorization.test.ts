// Authorization of inbound calls by SPIFFE ID, method and path, as compiled rules and over
// real mutual TLS (403 JSON with x-meshcar-error: forbidden), plus live replacement.

import t, { type Test } from 'tap';
import { AuthorizationPolicy } from '../../src/inbound/authorization.js';
import { isAcceptablePath, pathOf } from '../../src/http/request-target.js';
import { FRONTEND_ID, h1Request, h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';

const ADMIN_ID = `spiffe://${TD}/svc/admin`;
const BATCH_ID = `spiffe://${TD}/jobs/batch`;

t.test('compiled rules', async (t) => {
  const policy = AuthorizationPolicy.compile([
    { from: [FRONTEND_ID], methods: ['GET', 'POST'], paths: ['/orders', '/orders/*'] },
    { from: [`spiffe://${TD}/jobs/*`], methods: undefined, paths: ['/reports*'] },
    { from: [ADMIN_ID], methods: undefined, paths: undefined },
  ]);
  const frontend = policy.grantFor(FRONTEND_ID);
  t.ok(frontend.allows('GET', '/orders'));
  t.ok(frontend.allows('POST', '/orders/42'));
  t.notOk(frontend.allows('DELETE', '/orders/42'), 'method not listed');
  t.notOk(frontend.allows('HEAD', '/orders'), 'methods are exact: HEAD is not GET (README: list it too)');
  t.notOk(frontend.allows('GET', '/ordersx'), 'exact path is exact');
  t.notOk(frontend.allows('GET', '/admin'), 'path not listed');
  const batch = policy.grantFor(BATCH_ID);
  t.ok(batch.allows('DELETE', '/reports'), 'prefix identity, any method');
  t.ok(batch.allows('GET', '/reports/2024'));
  t.notOk(batch.allows('GET', '/orders'));
  t.notOk(policy.grantFor(`spiffe://${TD}/jobsx/batch`).allows('GET', '/reports'), 'an ID prefix ends at a slash');
  t.ok(policy.grantFor(ADMIN_ID).allows('PATCH', '/anything'), 'a rule without methods and paths allows all');
  t.notOk(policy.grantFor(`spiffe://${TD}/svc/other`).allows('GET', '/orders'), 'an ID no rule names');
  t.ok(AuthorizationPolicy.compile(undefined).grantFor(`spiffe://${TD}/svc/anyone`).allows('DELETE', '/x'), 'no rules: anyone of the trust domain');
});

t.test('request paths', async (t) => {
  t.equal(pathOf('/a/b?x=1'), '/a/b');
  t.equal(pathOf('/a/b'), '/a/b');
  for (const ok of ['/', '/orders/1', '/static/app.js', '/.well-known/x', '/a%20b', '*']) t.ok(isAcceptablePath(ok), ok);
  for (const bad of ['/orders/../admin', '/orders/./x', '/orders/..', '/orders/%2e%2e/admin', '/orders/%2E./admin', '/orders/..%2fadmin', '/orders\\..\\admin', 'http://x/orders', '']) {
    t.notOk(isAcceptablePath(bad), bad);
  }
});

t.test('authorization over mutual TLS', async (t) => {
  const fx = await startInbound({
    authorize: [
      { from: [FRONTEND_ID], methods: ['GET', 'POST'], paths: ['/orders', '/orders/*'] },
      { from: [`spiffe://${TD}/jobs/*`], methods: ['GET'], paths: undefined },
    ],
  });
  t.teardown(() => fx.close());
  const frontend = await fx.tlsOptions(FRONTEND_ID);

  t.test('allowed identity, method and path pass', async (t) => {
    t.equal((await h1Request(fx.port, frontend, { path: '/orders/7?verbose=1' })).status, 200);
    t.equal((await h1Request(fx.port, frontend, { method: 'POST', path: '/orders', body: '{}' })).status, 200);
    t.equal((await h1Request(fx.port, await fx.tlsOptions(BATCH_ID), { path: '/anything' })).status, 200, 'wildcard identity');
  });

  const denied = async (t: Test, res: Awaited<ReturnType<typeof h1Request>>, what: string) => {
    t.equal(res.status, 403, what);
    t.equal(res.headers['x-meshcar-error'], 'forbidden');
    t.match(res.headers['content-type'], /application\/json/);
    const body = JSON.parse(res.body);
    t.equal(body.error, 'forbidden');
    t.type(body.message, 'string');
    // who refused and by which key: the caller reads this answer through its own sidecar
    t.match(body.message, / is not allowed to [A-Z]+ \S+: no rule of the called sidecar's inbound\.authorize allows it$/, 'the message names the key that refused');
    t.equal(body.requestId, res.headers['x-request-id'], 'the request ID is in the body and the header');
    t.notOk(res.headers['x-app'], 'the app was not called');
  };

  t.test('another identity, method or path is refused with 403 forbidden', async (t) => {
    await denied(t, await h1Request(fx.port, await fx.tlsOptions(ADMIN_ID), { path: '/orders' }), 'identity');
    await denied(t, await h1Request(fx.port, frontend, { method: 'DELETE', path: '/orders/1' }), 'method');
    await denied(t, await h1Request(fx.port, frontend, { path: '/payments' }), 'path');
    const dotted = await h1Request(fx.port, frontend, { path: '/orders/../payments' });
    t.equal(dotted.status, 400, 'a path with dot segments is refused before matching');
    t.equal(dotted.headers['x-meshcar-error'], 'bad_request');
    t.equal(JSON.parse(dotted.body).error, 'bad_request');
    await denied(t, await h1Request(fx.port, await fx.tlsOptions(BATCH_ID), { method: 'POST', path: '/x', body: 'x' }), 'wildcard identity, wrong method');
    const records = await fx.observer.waitForRequests(8);
    t.same(records.slice(3).map((r) => [r.peer, r.status, r.errorCode]), [
      ['admin', 403, 'forbidden'],
      ['frontend', 403, 'forbidden'],
      ['frontend', 403, 'forbidden'],
      ['frontend', 400, 'bad_request'],
      [BATCH_ID, 403, 'forbidden'],
    ]);
  });

  t.test('HTTP/2 callers are authorized per stream', async (t) => {
    const session = await h2Connect(fx.port, frontend);
    t.teardown(() => session.close());
    t.equal((await h2Request(session, { ':path': '/orders/1' })).status, 200);
    const refused = await h2Request(session, { ':path': '/admin', ':method': 'GET' });
    t.equal(refused.status, 403);
    t.equal(refused.headers['x-meshcar-error'], 'forbidden');
    t.equal(JSON.parse(refused.body.toString()).error, 'forbidden');
    t.equal((await h2Request(session, { ':path': '/orders' })).status, 200, 'the session carries on');
  });

  t.test('setAuthorization replaces the rules for open connections too', async (t) => {
    const session = await h2Connect(fx.port, frontend);
    t.teardown(() => session.close());
    t.equal((await h2Request(session, { ':path': '/orders' })).status, 200);
    fx.inbound.setAuthorization([{ from: [ADMIN_ID], methods: undefined, paths: undefined }]);
    t.equal((await h2Request(session, { ':path': '/orders' })).status, 403, 'frontend lost its grant');
    t.equal((await h1Request(fx.port, await fx.tlsOptions(ADMIN_ID), { path: '/anything' })).status, 200);
    fx.inbound.setAuthorization(undefined);
    t.equal((await h2Request(session, { ':path': '/whatever' })).status, 200, 'no rules: anyone of the trust domain');
  });
});
