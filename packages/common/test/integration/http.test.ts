import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  bearerAuth,
  createHttpApp,
  listenHttp,
  mountRouter,
  OutpostError,
  readJson,
  requireKind,
  silentLogger,
  z,
  type Listening,
  type Principal,
} from '@outpost/common';
import { readErrorsTable } from '@outpost/testing';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const BODY_LIMIT = 1024;

const ThingBody = z.strictObject({
  name: z.string().min(1),
  tags: z.array(z.string()).optional(),
  nested: z.strictObject({ n: z.number() }).optional(),
});
const OptionalBody = z.strictObject({ name: z.string().optional() });

const PRINCIPALS: Record<string, Principal> = { 'admin-token': { kind: 'admin', id: 'ad_1' }, 'agent-token': { kind: 'agent', id: 'ag_1' } };

let server: Listening;
const url = (path: string): string => `${server.url}${path}`;

/** Documented statuses, so every error answer is also checked against the README table. */
let documentedStatus: Map<string, number | undefined>;
beforeAll(async () => {
  documentedStatus = new Map((await readErrorsTable(README)).map((r) => [r.code, r.status]));
});

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

async function expectError(res: Response, status: number, code: string): Promise<ErrorBody['error']> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as ErrorBody;
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  if (code.startsWith('COMMON_')) expect(documentedStatus.get(code), `README status of ${code}`).toBe(status);
  return body.error;
}

const postJson = (path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Response> =>
  fetch(url(path), { method: 'POST', headers, body });

beforeEach(async () => {
  const { app, router } = createHttpApp({ logger: silentLogger(), bodyLimit: BODY_LIMIT, health: () => ({ service: 'test' }) });
  router.get('/things/:id', (ctx) => {
    if (ctx.params.id === 'missing') {
      throw new OutpostError('TEST_THING_NOT_FOUND', `no thing ${ctx.params.id}`, { status: 404, details: { id: ctx.params.id } });
    }
    ctx.body = { id: ctx.params.id, requestId: ctx.state.requestId };
  });
  router.post('/things', async (ctx) => {
    ctx.body = { received: await readJson(ctx, ThingBody) };
  });
  router.post('/optional', async (ctx) => {
    ctx.body = { received: await readJson(ctx, OptionalBody) };
  });
  router.get('/boom', () => {
    throw new Error('connection string postgres://admin:hunter2@db');
  });
  router.get('/unavailable', () => {
    throw new OutpostError('TEST_UPSTREAM_DOWN', 'the upstream is down', { status: 503, details: { upstream: 'secret-host:5432' } });
  });
  router.get('/admin', bearerAuth((t) => PRINCIPALS[t]), requireKind('admin'), (ctx) => {
    ctx.body = { principal: ctx.state.principal };
  });
  router.get('/any', bearerAuth((t) => PRINCIPALS[t]), requireKind('admin', 'agent'), (ctx) => {
    ctx.body = { principal: ctx.state.principal };
  });
  mountRouter(app, router);
  server = await listenHttp(app, { host: '127.0.0.1', port: 0 });
});

afterEach(async () => {
  await server.close();
});

describe('createHttpApp', () => {
  it('listens on 127.0.0.1 with a usable url', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  });

  it('answers GET /api/v1/health without a credential, with the extra health fields', async () => {
    const res = await fetch(url('/api/v1/health'));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', service: 'test' });
  });

  it('echoes a well-formed x-request-id and hands it to the route', async () => {
    const res = await fetch(url('/things/1'), { headers: { 'x-request-id': 'edge-42.abc:1' } });
    expect(res.headers.get('x-request-id')).toBe('edge-42.abc:1');
    expect(await res.json()).toEqual({ id: '1', requestId: 'edge-42.abc:1' });
  });

  it('generates a request id when none is sent, a fresh one per request', async () => {
    const a = (await fetch(url('/things/1'))).headers.get('x-request-id');
    const b = (await fetch(url('/things/1'))).headers.get('x-request-id');
    expect(a).toMatch(/^[0-9a-f-]{36}$/);
    expect(b).toMatch(/^[0-9a-f-]{36}$/);
    expect(a).not.toBe(b);
  });

  it.each([['has spaces'], ['x'.repeat(129)], ['<script>']])('replaces a malformed x-request-id (%j) with a generated one', async (id) => {
    const res = await fetch(url('/things/1'), { headers: { 'x-request-id': id } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers an unknown path with 404 COMMON_NOT_FOUND in the JSON error shape', async () => {
    const err = await expectError(await fetch(url('/nope')), 404, 'COMMON_NOT_FOUND');
    expect(err.message).toBe('no route for GET /nope');
  });

  it('answers a known path under a wrong method with 405 COMMON_METHOD_NOT_ALLOWED and an allow header', async () => {
    const res = await fetch(url('/api/v1/health'), { method: 'DELETE' });
    expect(res.headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'HEAD']);
    await expectError(res, 405, 'COMMON_METHOD_NOT_ALLOWED');
    const put = await fetch(url('/things'), { method: 'PUT' });
    expect(put.headers.get('allow')).toBe('POST');
    await expectError(put, 405, 'COMMON_METHOD_NOT_ALLOWED');
  });

  it('still answers 404, not 405, for an unknown path when the router has path-less middleware', async () => {
    const { app, router } = createHttpApp({ logger: silentLogger() });
    router.use(async (_ctx, next) => next());
    router.get('/x', (ctx) => {
      ctx.body = {};
    });
    mountRouter(app, router);
    const other = await listenHttp(app, { host: '127.0.0.1', port: 0 });
    try {
      await expectError(await fetch(`${other.url}/nope`), 404, 'COMMON_NOT_FOUND');
      const res = await fetch(`${other.url}/x`, { method: 'POST' });
      expect(res.headers.get('allow')).toBe('HEAD, GET');
      await expectError(res, 405, 'COMMON_METHOD_NOT_ALLOWED');
    } finally {
      await other.close();
    }
  });

  it('maps an OutpostError with a 4xx status to that status, its code, message and details', async () => {
    const err = await expectError(await fetch(url('/things/missing')), 404, 'TEST_THING_NOT_FOUND');
    expect(err).toEqual({ code: 'TEST_THING_NOT_FOUND', message: 'no thing missing', details: { id: 'missing' } });
  });

  it('maps an OutpostError with a 5xx status to that status and code, without details', async () => {
    const err = await expectError(await fetch(url('/unavailable')), 503, 'TEST_UPSTREAM_DOWN');
    expect(err).toEqual({ code: 'TEST_UPSTREAM_DOWN', message: 'the upstream is down' });
  });

  it('answers an unexpected error with 500 COMMON_INTERNAL naming the request id, never the internal message', async () => {
    const res = await fetch(url('/boom'), { headers: { 'x-request-id': 'req-500' } });
    const text = await res.clone().text();
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('postgres');
    const err = await expectError(res, 500, 'COMMON_INTERNAL');
    expect(err).toEqual({ code: 'COMMON_INTERNAL', message: 'internal error (request id req-500)' });
  });
});

describe('readJson', () => {
  it('returns the validated body', async () => {
    const res = await postJson('/things', JSON.stringify({ name: 'a', tags: ['x'], nested: { n: 1 } }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: { name: 'a', tags: ['x'], nested: { n: 1 } } });
  });

  it('accepts a +json media type and a charset parameter', async () => {
    for (const type of ['application/merge-patch+json', 'application/json; charset=utf-8']) {
      const res = await postJson('/things', '{"name":"a"}', { 'content-type': type });
      expect(res.status).toBe(200);
    }
  });

  it('answers malformed JSON with 400 COMMON_BAD_JSON', async () => {
    await expectError(await postJson('/things', '{"name": "a",'), 400, 'COMMON_BAD_JSON');
  });

  it.each([['text/plain'], ['application/x-www-form-urlencoded']])('answers a %s body with 415 COMMON_UNSUPPORTED_MEDIA_TYPE', async (type) => {
    await expectError(await postJson('/things', '{"name":"a"}', { 'content-type': type }), 415, 'COMMON_UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a body without a content type with 415', async () => {
    const res = await fetch(url('/things'), { method: 'POST', body: new Uint8Array(Buffer.from('{"name":"a"}')) });
    await expectError(res, 415, 'COMMON_UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a body over the limit with 413 COMMON_BODY_TOO_LARGE', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(BODY_LIMIT) });
    const err = await expectError(await postJson('/things', big), 413, 'COMMON_BODY_TOO_LARGE');
    expect(err.message).toContain(String(BODY_LIMIT));
    // A body of exactly the limit is fine.
    const exact = JSON.stringify({ name: 'x'.repeat(BODY_LIMIT - 11) });
    expect(Buffer.byteLength(exact)).toBe(BODY_LIMIT);
    expect((await postJson('/things', exact)).status).toBe(200);
  });

  it('answers a chunked body over the limit (no content-length) with 413 COMMON_BODY_TOO_LARGE', async () => {
    const { status, body, headers } = await chunkedPost('/things', Array.from({ length: 16 }, (_, i) => (i === 0 ? '{"name":"' : 'x'.repeat(256))));
    expect(headers['content-length']).toBeUndefined();
    expect(status).toBe(413);
    expect(JSON.parse(body).error.code).toBe('COMMON_BODY_TOO_LARGE');
  });

  it('reads a chunked body under the limit', async () => {
    const { status, body } = await chunkedPost('/things', ['{"na', 'me":', '"chunked"}']);
    expect(status).toBe(200);
    expect(JSON.parse(body)).toEqual({ received: { name: 'chunked' } });
  });

  it('answers an unknown field with 400 COMMON_VALIDATION listing its path', async () => {
    const top = await expectError(await postJson('/things', '{"name":"a","colour":"red"}'), 400, 'COMMON_VALIDATION');
    expect(top.details).toEqual({ problems: [{ path: '(body)', message: "unknown field(s) 'colour'" }] });
    const nested = await expectError(await postJson('/things', '{"name":"a","nested":{"n":1,"m":2}}'), 400, 'COMMON_VALIDATION');
    expect(nested.details).toEqual({ problems: [{ path: 'nested', message: "unknown field(s) 'm'" }] });
  });

  it('lists every invalid field with its path in one 400 COMMON_VALIDATION', async () => {
    const err = await expectError(await postJson('/things', '{"name":"","tags":["a",2],"nested":{"n":"1"}}'), 400, 'COMMON_VALIDATION');
    const problems = (err.details as { problems: { path: string }[] }).problems;
    expect(problems.map((p) => p.path).sort()).toEqual(['name', 'nested.n', 'tags.1']);
    expect(err.message).toMatch(/^invalid request body: /);
  });

  it('reads an empty body as {}', async () => {
    const empty = await fetch(url('/optional'), { method: 'POST' });
    expect(empty.status).toBe(200);
    expect(await empty.json()).toEqual({ received: {} });
    const blank = await postJson('/optional', '  \n');
    expect(await blank.json()).toEqual({ received: {} });
    // ...which a schema with a required field then refuses.
    const err = await expectError(await fetch(url('/things'), { method: 'POST' }), 400, 'COMMON_VALIDATION');
    expect((err.details as { problems: { path: string }[] }).problems.map((p) => p.path)).toEqual(['name']);
  });

  it('answers a JSON body that is not an object with 400 COMMON_VALIDATION', async () => {
    await expectError(await postJson('/things', '[1,2]'), 400, 'COMMON_VALIDATION');
    await expectError(await postJson('/things', 'null'), 400, 'COMMON_VALIDATION');
  });
});

describe('bearerAuth and requireKind', () => {
  it('answers a request without a credential with 401 COMMON_UNAUTHORIZED and www-authenticate: Bearer', async () => {
    const res = await fetch(url('/admin'));
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    await expectError(res, 401, 'COMMON_UNAUTHORIZED');
  });

  it.each([['Basic YWRtaW46eA=='], ['Bearer'], ['Bearer a b'], [`Bearer ${'x'.repeat(1025)}`]])(
    'answers the malformed authorization %j with 401 and www-authenticate: Bearer',
    async (authorization) => {
      const res = await fetch(url('/admin'), { headers: { authorization } });
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      await expectError(res, 401, 'COMMON_UNAUTHORIZED');
    },
  );

  it('answers an unknown token with 401 and an invalid_token challenge', async () => {
    const res = await fetch(url('/admin'), { headers: { authorization: 'Bearer wrong' } });
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    await expectError(res, 401, 'COMMON_UNAUTHORIZED');
  });

  it('answers a valid credential of the wrong kind with 403 COMMON_FORBIDDEN', async () => {
    const res = await fetch(url('/admin'), { headers: { authorization: 'Bearer agent-token' } });
    const err = await expectError(res, 403, 'COMMON_FORBIDDEN');
    expect(err.message).toContain('admin');
  });

  it('lets a principal of an allowed kind through, with the scheme matched case-insensitively', async () => {
    const res = await fetch(url('/admin'), { headers: { authorization: 'bearer admin-token' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ principal: { kind: 'admin', id: 'ad_1' } });
    const any = await fetch(url('/any'), { headers: { authorization: 'Bearer agent-token' } });
    expect(any.status).toBe(200);
  });
});

/** POSTs `chunks` with chunked transfer encoding (no content-length), via node:http. */
function chunkedPost(path: string, chunks: string[]): Promise<{ status: number; body: string; headers: Record<string, string | undefined> }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | undefined> = {};
    const req = request(url(path), { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    // Record what the client actually sent.
    req.on('finish', () => {
      headers['content-length'] = req.getHeader('content-length') as string | undefined;
      headers['transfer-encoding'] = req.getHeader('transfer-encoding') as string | undefined;
    });
    for (const c of chunks) req.write(c);
    req.end();
  });
}
