// A gRPC label no longer carries a JSON body past a JSON schema. Any type that merely started
// with `application/grpc` skipped the schema under `*/*` or `application/*`: a JSON body sent
// as application/grpc+json (or application/grpcx+json, not gRPC at all) reached an app that
// reads application/*+json as JSON (Flask, Spring, ASP.NET) unchecked. Now only
// application/grpc and application/grpc+<codec> are gRPC, and they are framing only under an
// entry of their own type (src/schema/operation.ts isGrpcType). Over a real inbound, enforce mode.

import t from 'tap';
import { h1Request, type SimpleResponse } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

const SPEC = `openapi: 3.0.3
info: {title: grpc-labels, version: '1'}
paths:
  /any:
    post:
      requestBody:
        content:
          '*/*': {}
          application/json:
            schema: {type: object, additionalProperties: false, properties: {ok: {type: boolean}}}
      responses: {'200': {description: ok}}
  /app:
    post:
      requestBody:
        content:
          application/*: {schema: {type: object, additionalProperties: false, properties: {ok: {type: boolean}}}}
      responses: {'200': {description: ok}}
  /pkg.Orders/Get:
    post:
      requestBody:
        content:
          application/grpc+json: {}
          application/json:
            schema: {type: object, additionalProperties: false, properties: {ok: {type: boolean}}}
      responses: {'200': {description: ok}}
`;

const FORGED = '{"ok":true,"admin":true}';

/** One gRPC message as a gRPC-JSON client frames it: flag 0, a 4-byte length, the JSON. */
function grpcFrame(json: string): Buffer {
  const message = Buffer.from(json);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** What the inbound answered: the app's echo (`app`), or the refusal's code and message (a gRPC caller's as a gRPC status). */
function outcome(res: SimpleResponse): string {
  if (res.headers['x-app'] === 'echo') return `app ${res.status}`;
  const grpcMessage = res.headers['grpc-message'];
  if (typeof grpcMessage === 'string') return `${String(res.headers['x-meshcar-error'])}: ${decodeURIComponent(grpcMessage)}`;
  return `${res.status}: ${String(JSON.parse(res.body).message)}`;
}

t.test('a JSON body labelled with a gRPC type is held to the JSON schema where an app reads it as JSON', async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 1024, fileName: 'grpc-labels.yaml' });
  const post = (path: string, type: string, body: string | Buffer) => h1Request(f.port, tls, { method: 'POST', path, headers: { 'content-type': type }, body });
  for (const path of ['/any', '/app']) {
    for (const type of ['application/json', 'application/grpc+json', 'application/grpcx+json', 'Application/GRPC+JSON; charset=utf-8', 'application/grpc+x+json']) {
      // a gRPC caller (application/grpc+json) gets its refusal as a gRPC status
      const refusal = type.toLowerCase().startsWith('application/grpc+') ? 'schema_violation' : '400';
      t.equal(outcome(await post(path, type, FORGED)), `${refusal}: body/admin: is not allowed`, `${path}, ${type}: refused`);
      t.equal(outcome(await post(path, type, '{"ok":true}')), 'app 200', `${path}, ${type}: a valid body passes`);
    }
  }
  // a real gRPC-JSON call under a JSON schema: framed, never one JSON document, so refused
  t.equal(outcome(await post('/any', 'application/grpc+json', grpcFrame('{"ok":true}'))), 'schema_violation: body: is not valid JSON', 'a framed body under */* is not JSON');
  // gRPC types no app reads as JSON stream on under */*, as other non-JSON bodies do
  t.equal(outcome(await post('/any', 'application/grpc', grpcFrame(FORGED))), 'app 200', 'application/grpc under */*: unread');
  t.equal(outcome(await post('/any', 'application/grpc+proto', FORGED)), 'app 200', 'application/grpc+proto under */*: unread');
});

t.test('under its own entry a gRPC type is framing, streamed on unread', async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 1024, fileName: 'grpc-labels.yaml' });
  const post = (type: string, body: string | Buffer) => h1Request(f.port, tls, { method: 'POST', path: '/pkg.Orders/Get', headers: { 'content-type': type }, body });
  t.equal(outcome(await post('application/grpc+json', grpcFrame('{"ok":true}'))), 'app 200', 'listed application/grpc+json: a gRPC-JSON call passes');
  t.equal(outcome(await post('application/json', FORGED)), '400: body/admin: is not allowed', 'the same operation in JSON is validated');
  t.equal(outcome(await post('application/grpcx+json', FORGED)).slice(0, 4), '415:', 'application/grpcx+json is not the listed gRPC type');
});
