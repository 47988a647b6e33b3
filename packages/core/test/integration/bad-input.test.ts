import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { DatagramType, encodeDatagram } from '@outpost/common';
import { cleanup, collect, enrollAgent, heartbeat, nextMessage, sendTo, startCore, udpSocket, type TestCore } from './harness.js';

afterEach(cleanup);

const dropped = async (tc: TestCore): Promise<Record<string, number>> => (await tc.call('GET', '/stats')).body.datagrams.dropped;

describe('bad UDP input', () => {
  it('drops garbage, truncated, forged, unknown, replayed and stale datagrams without an ack, counts each by reason, and keeps working', async () => {
    const tc = await startCore({ config: { datagram: { window: '2m' } } });
    const a = await enrollAgent(tc, 'pc');
    const b = await enrollAgent(tc, 'other');
    const sock = await udpSocket();
    const valid = heartbeat(tc, a, { s: 'x' });

    const forged = Buffer.from(valid);
    forged[forged.length - 1]! ^= 0xff;
    const signedByOther = encodeDatagram({ type: DatagramType.HEARTBEAT, flags: 0, timestamp: tc.clock.now(), seq: 1, sender: a.id, payload: Buffer.alloc(0) }, b.key);
    const unknown = encodeDatagram({ type: DatagramType.HEARTBEAT, flags: 0, timestamp: tc.clock.now(), seq: 1, sender: 'ag_nobody', payload: Buffer.alloc(0) }, a.key);
    const stale = heartbeat(tc, a, {}, { timestamp: tc.clock.now() - 3 * 60_000 });
    const future = heartbeat(tc, a, {}, { timestamp: tc.clock.now() + 3 * 60_000 });
    const notJson = encodeDatagram({ type: DatagramType.HEARTBEAT, flags: 0, timestamp: tc.clock.now(), seq: 999_999, sender: a.id, payload: Buffer.from('{nope') }, a.key);
    const tickleToCore = encodeDatagram({ type: DatagramType.TICKLE, flags: 1, timestamp: tc.clock.now(), seq: 1, sender: b.id, payload: Buffer.alloc(0) }, b.key);

    // The valid one first, so its replay is a replay.
    const ack = nextMessage(sock, 2_000);
    await sendTo(sock, tc, valid);
    expect(await ack).toBeDefined();

    const hostile: [string, Buffer][] = [
      ['garbage', Buffer.from('hello, core')],
      ['empty', Buffer.alloc(0)],
      ['random', Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff))],
      ['oversized', Buffer.alloc(1400, 0x4f)],
      ['truncated', valid.subarray(0, valid.length - 5)],
      ['forged', forged],
      ['signed-by-another', signedByOther],
      ['unknown-sender', unknown],
      ['replay', valid],
      ['stale', stale],
      ['future', future],
      ['not-json', notJson],
      ['tickle-to-core', tickleToCore],
    ];
    const replies = collect(sock, 400);
    for (const [, msg] of hostile) await sendTo(sock, tc, msg);
    expect(await replies).toEqual([]);

    const d = await dropped(tc);
    expect(d).toMatchObject({
      'unknown-sender': 1,
      'bad-mac': 2,
      replay: 1,
      stale: 1,
      future: 1,
      'bad-payload': 1,
      'unexpected-type': 1,
    });
    const structural = (d['too-short'] ?? 0) + (d['too-long'] ?? 0) + (d['bad-magic'] ?? 0) + (d['bad-length'] ?? 0) + (d['bad-sender'] ?? 0);
    expect(structural).toBe(5);
    const stats = (await tc.call('GET', '/stats')).body.datagrams;
    expect(stats.received).toBe(1 + hostile.length);
    expect(stats.accepted).toBe(1);
    // None of it touched the agent's state.
    expect((await tc.call('GET', `/agents/${b.id}`)).body.lastContactVia).toBe('http');

    // Still working: a fresh valid heartbeat is acked (a later stamp: the clock is frozen,
    // and the authentic but unparsable one above took the stamp it had).
    tc.clock.advance(1);
    const again = nextMessage(sock, 2_000);
    await sendTo(sock, tc, heartbeat(tc, a, { s: 'y' }));
    expect(await again).toBeDefined();
  });

  it('stops acking the heartbeats of a deleted agent', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc');
    await tc.call('DELETE', `/agents/${a.id}`);
    const sock = await udpSocket();
    const reply = nextMessage(sock, 300);
    await sendTo(sock, tc, heartbeat(tc, a));
    expect(await reply).toBeUndefined();
    expect((await dropped(tc))['unknown-sender']).toBe(1);
  });
});

/** A raw HTTP request (fetch cannot send a lying content-length or a broken stream). */
function raw(tc: TestCore, opts: { method: string; path: string; headers: Record<string, string>; body?: string | Buffer }): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const u = new URL(`${tc.url}/api/v1${opts.path}`);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method, headers: opts.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('bad HTTP input', () => {
  it('answers malformed JSON with 400 COMMON_BAD_JSON', async () => {
    const tc = await startCore();
    for (const body of ['{', '{"name": "x",}', 'nul', '"\\u12"']) {
      const r = await tc.call('POST', '/sites', { raw: body, headers: { 'content-type': 'application/json' } });
      expect(r.status, body).toBe(400);
      expect(r.body.error.code).toBe('COMMON_BAD_JSON');
    }
    const e = await tc.call('POST', '/enroll', { token: null, raw: '{"token":', headers: { 'content-type': 'application/json' } });
    expect(e.body.error.code).toBe('COMMON_BAD_JSON');
  });

  it('answers an unknown field with 400 COMMON_VALIDATION naming the field', async () => {
    const tc = await startCore();
    const r = await tc.call('POST', '/sites', { body: { name: 'x', subnets: [], colour: 'blue' } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('COMMON_VALIDATION');
    expect(r.body.error.message).toContain('colour');
    const t = await tc.call('POST', '/tokens', { body: { for: 'agent', usses: 3 } });
    expect(t.body.error.code).toBe('COMMON_VALIDATION');
    expect(t.body.error.message).toContain('usses');
  });

  it('answers wrong types and shapes with 400 COMMON_VALIDATION', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc');
    const bads: [string, string, unknown][] = [
      ['POST', '/sites', { name: 42, subnets: [] }],
      ['POST', '/sites', [1, 2, 3]],
      ['POST', '/sites', 'hq'],
      ['POST', '/sites', { name: '', subnets: [] }],
      ['POST', '/sites', { name: 'a/b', subnets: [] }],
      ['POST', '/tokens', { for: 'robot' }],
      ['POST', '/tokens', { for: 'agent', uses: 0 }],
      ['POST', '/tokens', { for: 'agent', expires: 'soon' }],
      ['PATCH', `/agents/${a.id}`, { macs: ['not-a-mac'] }],
    ];
    for (const [method, path, body] of bads) {
      const r = await tc.call(method, path, { body });
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body.error.code).toBe('COMMON_VALIDATION');
    }
  });

  it('answers a body over http.bodyLimit with 413, declared or streamed', async () => {
    const tc = await startCore({ config: { http: { bodyLimit: 1024 } } });
    const big = JSON.stringify({ name: 'x', subnets: [], description: 'y'.repeat(2000) });
    const r = await tc.call('POST', '/sites', { raw: big, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('COMMON_BODY_TOO_LARGE');
    const chunked = await raw(tc, {
      method: 'POST',
      path: '/sites',
      headers: { authorization: `Bearer ${tc.admin}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: big,
    });
    expect(chunked.status).toBe(413);
    const e = await tc.call('POST', '/enroll', { token: null, raw: big, headers: { 'content-type': 'application/json' } });
    expect(e.status).toBe(413);
  });

  it('answers a non-JSON content type with 415', async () => {
    const tc = await startCore();
    const r = await tc.call('POST', '/sites', { raw: 'name=hq', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status).toBe(415);
    expect(r.body.error.code).toBe('COMMON_UNSUPPORTED_MEDIA_TYPE');
    const plain = await tc.call('POST', '/sites', { raw: '{"name":"hq","subnets":[]}', headers: { 'content-type': 'text/plain' } });
    expect(plain.status).toBe(415);
  });

  it('answers a bad MAC at enrollment with 400 and spends no use', async () => {
    const tc = await startCore();
    const token = (await tc.call('POST', '/tokens', { body: { for: 'agent' } })).body.token;
    const r = await tc.call('POST', '/enroll', { token: null, body: { token, name: 'pc', macs: ['52:54:00:zz:00:01'] } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('COMMON_VALIDATION');
    expect(r.body.error.message).toContain('macs');
    expect((await tc.call('GET', '/tokens')).body.items[0].usesLeft).toBe(1);
  });

  it('answers bad query parameters with 400', async () => {
    const tc = await startCore();
    for (const q of ['limit=0', 'limit=abc', 'limit=100000', 'state=asleep', 'colour=red']) {
      const r = await tc.call('GET', `/agents?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code).toBe('COMMON_VALIDATION');
    }
  });

  it('answers unknown routes 404 and wrong methods 405, as JSON', async () => {
    const tc = await startCore();
    const nf = await tc.call('GET', '/nothing-here');
    expect(nf.status).toBe(404);
    const na = await tc.call('PUT', '/sites');
    expect(na.status).toBe(405);
    expect(na.body.error.code).toBe('COMMON_METHOD_NOT_ALLOWED');
  });

  it('survives a burst of hostile requests and aborted uploads, and keeps serving', async () => {
    const tc = await startCore();
    const aborted = Array.from(
      { length: 40 },
      (_, i) =>
        new Promise<void>((resolve) => {
          const u = new URL(`${tc.url}/api/v1${i % 2 ? '/enroll' : '/sites'}`);
          const req = request({
            host: u.hostname,
            port: u.port,
            path: u.pathname,
            method: 'POST',
            headers: { authorization: `Bearer ${tc.admin}`, 'content-type': 'application/json', 'content-length': '100' },
          });
          req.on('error', () => resolve());
          req.on('close', () => resolve());
          req.write('{"name":');
          setTimeout(() => req.destroy(), 50);
        }),
    );
    const hostile = Array.from({ length: 40 }, (_, i) =>
      raw(tc, { method: 'POST', path: '/sites', headers: { authorization: `Bearer ${tc.admin}`, 'content-type': 'application/json' }, body: i % 2 ? '\u0000\xff{{' : '[' }),
    );
    await Promise.all([...aborted, ...hostile]);
    expect((await tc.call('GET', '/health', { token: null })).status).toBe(200);
    expect((await tc.call('POST', '/sites', { body: { name: 'still-ok', subnets: [] } })).status).toBe(201);
  });
});
