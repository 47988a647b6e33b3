import { once } from 'node:events';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { metricTotal, parseMetrics, waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, newDataDir, startCore, udpSocket } from './harness.js';

const servers: Server[] = [];
const conns: Socket[] = [];
afterEach(async () => {
  await cleanup();
  for (const c of conns.splice(0)) c.destroy();
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

/** RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA SP MSG */
const RFC5424 = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[[^\]]*\]|-) (.*)$/s;

function parseSyslog(msg: string) {
  const m = RFC5424.exec(msg);
  if (!m) throw new Error(`not RFC 5424: ${msg.slice(0, 120)}`);
  const pri = Number(m[1]);
  return { facility: pri >> 3, severity: pri & 7, timestamp: m[2]!, host: m[3]!, app: m[4]!, procid: m[5]!, msgid: m[6]!, sd: m[7]!, msg: JSON.parse(m[8]!) as Record<string, unknown> };
}

describe('audit export', () => {
  it('appends each entry as a JSON line to a 0600 file and sends it as RFC 5424 syslog over UDP', async () => {
    const file = join(await newDataDir(), 'audit.jsonl');
    const rx = await udpSocket();
    const got: string[] = [];
    rx.on('message', (m) => got.push(m.toString('utf8')));
    const tc = await startCore({ config: { audit: { export: { file, syslog: { host: '127.0.0.1', port: rx.address().port, protocol: 'udp', facility: 'local3', appName: 'outpost-test' } } } } });
    expect((await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } })).status).toBe(201);
    expect((await tc.call('POST', '/sites', { token: null, body: {} })).status).toBe(401);
    await waitFor(() => got.length >= 2, { what: 'two syslog datagrams' });
    const items = (await tc.call('GET', '/audit')).body.items.reverse() as Array<{ seq: number; action: string; at: string }>;
    await waitFor(async () => (await readFile(file, 'utf8')).split('\n').filter(Boolean).length >= 2, { what: 'two lines in the export file' });
    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
    expect(lines).toEqual(items);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    const [ok, refused] = got.map(parseSyslog);
    expect(ok).toMatchObject({ facility: 19, severity: 6, app: 'outpost-test', procid: String(process.pid), msgid: 'sites.create', timestamp: items[0]!.at });
    expect(ok!.sd).toBe(`[audit@32473 seq="${items[0]!.seq}" result="ok"]`);
    expect(ok!.msg).toEqual(items[0]);
    expect(refused).toMatchObject({ facility: 19, severity: 4, msgid: 'sites.create', msg: { outcome: { status: 401, result: 'refused' } } });
    expect(tc.core.stats().audit).toMatchObject({ exported: { file: 2, syslog: 2 }, exportFailures: { file: 0, syslog: 0 } });
  });

  it('sends RFC 6587 octet-counted frames over TCP', async () => {
    let buf = '';
    const server = createServer((s) => {
      conns.push(s);
      s.setEncoding('utf8').on('data', (d: string) => (buf += d));
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const tc = await startCore({ config: { audit: { export: { syslog: { host: '127.0.0.1', port, protocol: 'tcp' } } } } });
    for (const name of ['a', 'b', 'c']) expect((await tc.call('POST', '/sites', { body: { name, subnets: [`10.${name.charCodeAt(0)}.0.0/16`] } })).status).toBe(201);
    const frames: string[] = [];
    await waitFor(
      () => {
        frames.length = 0;
        let rest = Buffer.from(buf);
        while (rest.length > 0) {
          const sp = rest.indexOf(0x20);
          const len = Number(rest.subarray(0, sp).toString());
          if (sp < 0 || rest.length < sp + 1 + len) return false;
          frames.push(rest.subarray(sp + 1, sp + 1 + len).toString('utf8'));
          rest = rest.subarray(sp + 1 + len);
        }
        return frames.length >= 3;
      },
      { what: 'three TCP syslog frames' },
    );
    expect(frames.map((f) => parseSyslog(f)).map((p) => [p.facility, p.app, (p.msg.request as { name: string }).name])).toEqual([
      [16, 'outpost', 'a'],
      [16, 'outpost', 'b'],
      [16, 'outpost', 'c'],
    ]);
  });

  it('counts export failures without failing the API, and exposes the counters as metrics', async () => {
    const tc = await startCore({ config: { audit: { export: { file: join(await newDataDir(), 'no-such-dir', 'audit.jsonl') } } } });
    expect((await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } })).status).toBe(201);
    await waitFor(() => (tc.core.stats().audit as { exportFailures: { file: number } }).exportFailures.file >= 1, { what: 'a counted export failure' });
    expect((await tc.call('GET', '/audit')).body.items).toHaveLength(1);
    // Exposed as metrics: entries written, append failures, export failures.
    const samples = parseMetrics(await (await fetch(`${tc.url}/metrics`)).text());
    expect(metricTotal(samples, 'outpost_core_module_stat', 'stat="audit.written"')).toBe(1);
    expect(metricTotal(samples, 'outpost_core_module_stat', 'stat="audit.appendFailures"')).toBe(0);
    expect(metricTotal(samples, 'outpost_core_module_stat', 'stat="audit.exportFailures.file"')).toBeGreaterThanOrEqual(1);
  });
});
