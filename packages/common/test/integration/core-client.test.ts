import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CoreJsonClient, coreCallHeaders, createHttpApp, listenHttp, mountRouter, OutpostError, silentLogger, type CoreErrorAnswer, type CoreUnreachable, type Listening } from '@outpost/common';

/** What the fake core saw of one call. */
interface Seen {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let core: Listening;
let seen: Seen[];
let release: () => void;

/** A client whose errors carry the structured failure, so the tests can look at it. */
const client = (coreUrl: string, timeoutMs = 2_000): CoreJsonClient =>
  new CoreJsonClient({
    coreUrl,
    timeoutMs,
    errors: {
      unreachable: (f: CoreUnreachable) => new OutpostError('TEST_UNREACHABLE', f.why, { details: { ...f, cause: undefined } }),
      answer: (f: CoreErrorAnswer) => new OutpostError('TEST_ANSWER', `${f.status}`, { details: { ...f } }),
    },
  });

async function failure(p: Promise<unknown>): Promise<OutpostError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutpostError);
  return err as OutpostError;
}

beforeEach(async () => {
  seen = [];
  const hang = new Promise<void>((resolve) => (release = resolve));
  const { app, router } = createHttpApp({ logger: silentLogger() });
  app.use(async (ctx, next) => {
    const chunks: Buffer[] = [];
    for await (const c of ctx.req) chunks.push(c as Buffer);
    seen.push({ method: ctx.method, path: ctx.path, headers: { ...ctx.headers }, body: Buffer.concat(chunks).toString('utf8') });
    await next();
  });
  router.post('/api/v1/echo', (ctx) => {
    ctx.body = { ok: true };
  });
  router.get('/api/v1/empty', (ctx) => {
    ctx.status = 204;
  });
  router.get('/api/v1/refused', () => {
    throw new OutpostError('CORE_THING_REFUSED', 'not this thing', { status: 409 });
  });
  router.get('/api/v1/plain', (ctx) => {
    ctx.status = 503;
    ctx.type = 'text/plain';
    ctx.body = 'down for maintenance';
  });
  router.get('/api/v1/hang', async (ctx) => {
    await Promise.race([hang, once(ctx.res, 'close')]);
  });
  router.get('/api/v1/cut', (ctx) => {
    ctx.respond = false;
    ctx.res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
    ctx.res.write('{"par');
    setTimeout(() => ctx.res.destroy(), 20);
  });
  mountRouter(app, router);
  core = await listenHttp(app, { host: '127.0.0.1', port: 0 });
});

afterEach(async () => {
  release();
  await core.close();
});

describe('CoreJsonClient', () => {
  it('sends JSON to <coreUrl>/api/v1 with the bearer and an x-request-id of its own, and answers the parsed body', async () => {
    const c = client(`${core.url}/`);
    c.bearer = 'cred-1';
    expect(c.apiBase).toBe(`${core.url}/api/v1`);
    expect(await c.call('POST', '/echo', { a: 1 })).toEqual({ ok: true });
    const [s] = seen;
    expect(s?.path).toBe('/api/v1/echo');
    expect(s?.headers.authorization).toBe('Bearer cred-1');
    expect(s?.headers['content-type']).toBe('application/json');
    expect(s?.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(s?.body ?? '')).toEqual({ a: 1 });
  });

  it('sends no authorization while the bearer is empty, and a fresh request id per call', async () => {
    const c = client(core.url);
    await c.call('GET', '/empty');
    await c.call('GET', '/empty');
    expect(seen.map((s) => s.headers.authorization)).toEqual([undefined, undefined]);
    expect(seen[0]?.headers['x-request-id']).not.toBe(seen[1]?.headers['x-request-id']);
  });

  it('answers undefined for an empty (204) body', async () => {
    expect(await client(core.url).call('GET', '/empty')).toBeUndefined();
  });

  it("hands an error answer to errors.answer with the status, the core's code and message, and the request id sent", async () => {
    const err = await failure(client(core.url).call('GET', '/refused'));
    expect(err.code).toBe('TEST_ANSWER');
    expect(err.details).toMatchObject({ method: 'GET', path: '/refused', status: 409, code: 'CORE_THING_REFUSED', message: 'not this thing' });
    expect(err.details?.requestId).toBe(seen[0]?.headers['x-request-id']);
  });

  it('hands a non-JSON error answer over with its text and no code', async () => {
    const err = await failure(client(core.url).call('GET', '/plain'));
    expect(err.details).toMatchObject({ status: 503, code: undefined, message: undefined, text: 'down for maintenance' });
  });

  it('hands a refused connection to errors.unreachable with the transport code', async () => {
    const gone = await listenHttp(createHttpApp({ logger: silentLogger() }).app, { host: '127.0.0.1', port: 0 });
    await gone.close();
    const err = await failure(client(gone.url).call('GET', '/echo'));
    expect(err.code).toBe('TEST_UNREACHABLE');
    expect(err.details).toMatchObject({ method: 'GET', path: '/echo', coreUrl: gone.url, why: 'ECONNREFUSED' });
  });

  it('gives up after timeoutMs, or the per-call bound, as unreachable', async () => {
    const c = client(core.url, 5_000);
    const t0 = Date.now();
    const err = await failure(c.call('GET', '/hang', undefined, 150));
    expect(err.code).toBe('TEST_UNREACHABLE');
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect((await failure(client(core.url, 150).call('GET', '/hang'))).code).toBe('TEST_UNREACHABLE');
    core.server.closeAllConnections(); // the aborted calls' sockets would hold close() for 2 s
  });

  it('counts a 2xx answer that breaks off as unreachable, never as a partial result', async () => {
    expect((await failure(client(core.url).call('GET', '/cut'))).code).toBe('TEST_UNREACHABLE');
  });
});

describe('coreCallHeaders', () => {
  it('names the request, and the bearer and body type and length only when there are some', () => {
    expect(coreCallHeaders('r1', '', undefined)).toEqual({ accept: 'application/json', 'x-request-id': 'r1' });
    expect(coreCallHeaders('r2', 'tok', Buffer.from('{"a":1}'))).toEqual({
      accept: 'application/json',
      'x-request-id': 'r2',
      authorization: 'Bearer tok',
      'content-type': 'application/json',
      'content-length': '7',
    });
  });
});
