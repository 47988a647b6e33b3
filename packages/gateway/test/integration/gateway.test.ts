import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { silentLogger, validateConfig } from '@outpost/common';
import { removeDir, tempDir } from '@outpost/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, gatewayConfigSchema, type Gateway, type GatewayConfigInput } from '../../src/index.js';
import { dial, exchange, openFds, run, sleep, until } from '../helpers.js';
import { issue, makeCa, writeLeaf, type Leaf, type TestCa } from '@outpost/testing/pki';

let dir: string;
let ca: TestCa;
let other: TestCa;
let caFile: string;
let revokedFile: string;
let serverFiles: { cert: string; key: string };
const leaves: Record<string, Leaf> = {};
const files: Record<string, { cert: string; key: string }> = {};
let backend: Server;
let backendPort: number;
const gateways: Gateway[] = [];

beforeAll(async () => {
  dir = await tempDir('outpost-gateway-test-');
  ca = await makeCa('core_a');
  other = await makeCa('core_b');
  caFile = join(dir, 'ca.crt');
  await writeFile(caFile, ca.pem);
  revokedFile = join(dir, 'revoked.txt');
  await writeFile(revokedFile, '');
  serverFiles = await writeLeaf(dir, 'server', await issue(ca, { id: 'gw', kind: 'site-server', names: ['localhost', '127.0.0.1'] }));
  leaves.agent = await issue(ca, { id: 'ag_good' });
  leaves.agent2 = await issue(ca, { id: 'ag_two' });
  leaves.expired = await issue(ca, { id: 'ag_old', notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  leaves.revoked = await issue(ca, { id: 'ag_revoked' });
  leaves.foreign = await issue(other, { id: 'ag_foreign' });
  leaves.wrongCore = await issue(ca, { id: 'ag_liar', coreId: 'core_b' });
  for (const [k, v] of Object.entries(leaves)) files[k] = await writeLeaf(dir, k, v);
  await writeFile(revokedFile, `${leaves.revoked!.serial}\n`);
  backend = createServer((req, res) => {
    if (req.url === '/big') {
      res.end(Buffer.alloc(4 * 1024 * 1024, 7));
      return;
    }
    res.end('hello core');
  });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  backendPort = (backend.address() as AddressInfo).port;
});

afterEach(async () => {
  for (const g of gateways.splice(0)) await g.stop();
});

afterAll(async () => {
  backend.closeAllConnections();
  await new Promise<void>((r) => backend.close(() => r()));
  await removeDir(dir);
});

async function startGateway(over: Partial<GatewayConfigInput> = {}, routes?: string[]): Promise<Gateway> {
  const config = validateConfig(
    gatewayConfigSchema,
    {
      dataDir: join(dir, `gw-${gateways.length}-${Date.now()}`),
      listen: { host: '127.0.0.1', port: 0 },
      metrics: { host: '127.0.0.1', port: 0 },
      tls: { certFile: serverFiles.cert, keyFile: serverFiles.key },
      cores: [{ caFile, routes: routes ?? [`127.0.0.1:${backendPort}`], revokedFile }],
      ...over,
    },
    { file: 'test' },
  );
  const g = createGateway(config, { logger: silentLogger(), processMetrics: false });
  await g.start();
  gateways.push(g);
  return g;
}

const connectLine = (target: string): string => `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`;

describe('gateway with real clients', () => {
  it('lets curl with a client certificate CONNECT through it to the core', async () => {
    const g = await startGateway();
    const r = await run('curl', ['-sS', '--max-time', '5', '--proxytunnel', '--proxy', `https://127.0.0.1:${g.port}`, '--proxy-cert', files.agent!.cert, '--proxy-key', files.agent!.key, '--proxy-cacert', caFile, `http://127.0.0.1:${backendPort}/`], '');
    expect(r.out).toBe('hello core');
    expect(g.stats().tunnelsTotal).toBe(1);
  });

  it.each([
    ['no certificate', undefined, 'GATEWAY_CERT_REQUIRED'],
    ['an expired certificate', 'expired', 'GATEWAY_CERT_INVALID'],
    ['a revoked certificate', 'revoked', 'GATEWAY_CERT_REVOKED'],
    ['a certificate from another CA', 'foreign', 'GATEWAY_CERT_INVALID'],
    ['a certificate naming another core', 'wrongCore', 'GATEWAY_UNKNOWN_CORE'],
  ])('refuses openssl s_client with %s', async (_what, leaf, code) => {
    const g = await startGateway();
    const args = ['s_client', '-connect', `127.0.0.1:${g.port}`, '-CAfile', caFile, '-quiet', '-verify_return_error'];
    if (leaf) args.push('-cert', files[leaf]!.cert, '-key', files[leaf]!.key);
    const r = await run('openssl', args, connectLine(`127.0.0.1:${backendPort}`));
    expect(r.out).toMatch(/HTTP\/1\.1 (403|407)/);
    expect(r.out).toContain(code);
    expect(g.stats().tunnelsTotal).toBe(0);
  });
});

describe('gateway routing and faults', () => {
  it('refuses targets that are not on the core’s routing table, and non-CONNECT methods', async () => {
    const g = await startGateway();
    const s1 = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(s1, connectLine('127.0.0.1:22'))).toContain('GATEWAY_TARGET_NOT_ALLOWED');
    const s2 = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(s2, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toContain('GATEWAY_METHOD_NOT_ALLOWED');
    const s3 = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(s3, 'CONNECT nonsense HTTP/1.1\r\n\r\n')).toContain('GATEWAY_BAD_REQUEST');
  });

  it('routes by SNI name, or by Host when a certificate holder sends a plain request instead of CONNECT', async () => {
    const g = await startGateway({ tls: { certFile: serverFiles.cert, keyFile: serverFiles.key, names: ['gateway.test'] } }, [`localhost:${backendPort}`, `127.0.0.1:${backendPort}`]);
    // SNI names a route's host: tunnelled at once, the first bytes are the backend's.
    const bySni = await dial(g.port, { cert: leaves.agent!.cert, key: leaves.agent!.key, ca: ca.pem });
    expect(await exchange(bySni, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toContain('hello core');
    bySni.destroy();
    // SNI is the gateway's own name: a plain request is routed by its Host (replayed to the target).
    const own = connect({ host: '127.0.0.1', port: g.port, ca: ca.pem, servername: 'gateway.test', checkServerIdentity: () => undefined, cert: leaves.agent!.cert, key: leaves.agent!.key });
    await once(own, 'secureConnect');
    expect(await exchange(own, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${backendPort}\r\n\r\n`)).toContain('hello core');
    own.destroy();
    const off = connect({ host: '127.0.0.1', port: g.port, ca: ca.pem, servername: 'gateway.test', checkServerIdentity: () => undefined, cert: leaves.agent!.cert, key: leaves.agent!.key });
    await once(off, 'secureConnect');
    expect(await exchange(off, 'GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n')).toContain('GATEWAY_TARGET_NOT_ALLOWED');
    expect(g.stats().tunnelsTotal).toBe(2);
  });

  it('answers 431 to an oversized CONNECT head and 408 to a slow one', async () => {
    const g = await startGateway({ limits: { headTimeout: 300 } });
    const s1 = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(s1, `CONNECT 127.0.0.1:${backendPort} HTTP/1.1\r\nX-Pad: ${'a'.repeat(10_000)}\r\n\r\n`)).toContain('431');
    const s2 = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(s2, 'CONNECT 127.0.0.1')).toContain('GATEWAY_HEAD_TIMEOUT');
  });

  it('survives garbage before the TLS handshake and counts it', async () => {
    const g = await startGateway();
    for (let i = 0; i < 5; i++) {
      const s = netConnect(g.port, '127.0.0.1');
      await once(s, 'connect');
      s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01garbage');
      await once(s, 'close');
    }
    await until(() => g.stats().tlsErrors >= 5);
    expect(g.stats().tlsErrors).toBeGreaterThanOrEqual(5);
    const r = await run('curl', ['-sS', '--max-time', '5', '--proxytunnel', '--proxy', `https://127.0.0.1:${g.port}`, '--proxy-cert', files.agent!.cert, '--proxy-key', files.agent!.key, '--proxy-cacert', caFile, `http://127.0.0.1:${backendPort}/`], '');
    expect(r.out).toBe('hello core');
  });

  it('closes the tunnel when the backend dies mid-tunnel, and answers 502 when it is down', async () => {
    const dying = createServer();
    dying.on('connection', (s) => setTimeout(() => s.destroy(), 100));
    dying.listen(0, '127.0.0.1');
    await once(dying, 'listening');
    const port = (dying.address() as AddressInfo).port;
    const g = await startGateway({}, [`127.0.0.1:${port}`, '127.0.0.1:1']);
    const s = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(s, connectLine(`127.0.0.1:${port}`))).toContain('200 Connection Established');
    await once(s, 'close');
    expect(await until(() => g.stats().tunnels === 0)).toBe(true);
    await new Promise<void>((r) => dying.close(() => r()));
    const s2 = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(s2, connectLine('127.0.0.1:1'))).toContain('GATEWAY_UPSTREAM_UNREACHABLE');
  });

  it('closes half-open tunnels and idle ones', async () => {
    const g = await startGateway({ limits: { idleTimeout: 300 } });
    const s = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(s, connectLine(`127.0.0.1:${backendPort}`))).toContain('200');
    await once(s, 'close');
    expect(await until(() => g.stats().tunnels === 0)).toBe(true);
  });

  it('caps tunnels per client and rate-limits handshakes per IP with a Retry-After hint', async () => {
    const g = await startGateway({ limits: { maxPerClient: 2, handshakeRate: 0.1, handshakeBurst: 3 } });
    const open = [];
    for (let i = 0; i < 2; i++) {
      const s = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
      expect(await exchange(s, connectLine(`127.0.0.1:${backendPort}`))).toContain('200');
      open.push(s);
    }
    const third = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(third, connectLine(`127.0.0.1:${backendPort}`))).toContain('GATEWAY_TOO_MANY_CONNECTIONS');
    const s4 = await dial(g.port, { ...leaves.agent2!, ca: ca.pem });
    const r = await exchange(s4, connectLine(`127.0.0.1:${backendPort}`));
    expect(r).toContain('429');
    expect(r).toMatch(/retry-after: \d+/);
    await expect(dial(g.port, { ...leaves.agent2!, ca: ca.pem })).rejects.toThrow();
    for (const s of open) s.destroy();
  });

  it('closes the tunnels of a certificate revoked by a reload, keeps the others, and refuses it afterwards', async () => {
    const g = await startGateway();
    const victim = await dial(g.port, { ...leaves.agent2!, ca: ca.pem });
    expect(await exchange(victim, connectLine(`127.0.0.1:${backendPort}`))).toContain('200');
    const keeper = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(keeper, connectLine(`127.0.0.1:${backendPort}`))).toContain('200');
    await writeFile(revokedFile, `${leaves.revoked!.serial}\n${leaves.agent2!.serial}\n`);
    const closed = once(victim, 'close');
    await g.reload();
    await closed;
    expect(await exchange(keeper, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toContain('hello core');
    const again = await dial(g.port, { ...leaves.agent2!, ca: ca.pem });
    expect(await exchange(again, connectLine(`127.0.0.1:${backendPort}`))).toContain('GATEWAY_CERT_REVOKED');
    keeper.destroy();
    await writeFile(revokedFile, `${leaves.revoked!.serial}\n`);
  });

  it('swaps its own certificate on reload without dropping tunnels, and resumes TLS sessions', async () => {
    const g = await startGateway();
    const s = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    const gotSession = new Promise<Buffer>((r) => s.once('session', r));
    expect(await exchange(s, connectLine(`127.0.0.1:${backendPort}`))).toContain('200');
    const session = await gotSession;
    const early = await dial(g.port, { ...leaves.agent!, ca: ca.pem, session });
    expect(early.isSessionReused()).toBe(true);
    early.destroy();
    const fresh = await issue(ca, { id: 'gw', kind: 'site-server', names: ['localhost', '127.0.0.1'] });
    await writeFile(serverFiles.cert, fresh.cert);
    await writeFile(serverFiles.key, fresh.key);
    await g.reload();
    expect(await exchange(s, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toContain('hello core');
    const n = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(n.getPeerCertificate().serialNumber.toLowerCase()).toContain(fresh.serial.replace(/^0+/, ''));
    const resumed = await dial(g.port, { ...leaves.agent!, ca: ca.pem, session });
    expect(resumed.isSessionReused()).toBe(true);
    for (const x of [s, n, resumed]) x.destroy();
  });

  it('relays a 4 MiB body intact', async () => {
    const g = await startGateway();
    const s = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
    expect(await exchange(s, connectLine(`127.0.0.1:${backendPort}`))).toContain('200');
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    s.write('GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await once(s, 'close');
    expect(got).toBeGreaterThan(4 * 1024 * 1024);
  });

  it('relays two targets’ streams intact through the shared upstream read buffer, and stops reading a target while its client does not read', async () => {
    // Each target sends SIZE bytes whose value depends on the position and the target, so
    // a chunk that was overwritten in the shared buffer before it reached its client shows.
    const SIZE = 96 * 1024 * 1024;
    const byteAt = (seed: number, i: number): number => (i * 31 + (i >>> 16) + seed) & 0xff;
    const block = (seed: number, from: number, n: number): Buffer => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = byteAt(seed, from + i);
      return b;
    };
    const sent = new Map<number, () => number>();
    const streamer = createNetServer((sock) => {
      sock.once('data', (d) => {
        const seed = Number(/seed=(\d+)/.exec(d.toString())?.[1]);
        let at = 0;
        sent.set(seed, () => sock.bytesWritten - sock.writableLength);
        const more = (): void => {
          while (at < SIZE) {
            const n = Math.min(256 * 1024, SIZE - at);
            const ok = sock.write(block(seed, at, n));
            at += n;
            if (!ok) return void sock.once('drain', more);
          }
          sock.end();
        };
        more();
      });
      sock.on('error', () => sock.destroy());
    });
    streamer.listen(0, '127.0.0.1');
    await once(streamer, 'listening');
    const port = (streamer.address() as AddressInfo).port;
    try {
      const g = await startGateway({}, [`127.0.0.1:${port}`]);
      const receive = async (seed: number, stallMs: number): Promise<{ got: number; bad: number; sentWhileStalled: number }> => {
        const s = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
        expect(await exchange(s, connectLine(`127.0.0.1:${port}`))).toContain('200');
        let got = 0;
        let bad = 0;
        let sentWhileStalled = 0;
        s.on('data', (d: Buffer) => {
          for (let i = 0; i < d.length; i++) if (d[i] !== byteAt(seed, got + i)) bad++;
          got += d.length;
        });
        s.write(`seed=${seed}`);
        if (stallMs > 0) {
          s.pause();
          await sleep(stallMs);
          // Until every buffer between the target and the stalled client is full, the target
          // still sends: wait (bounded) until its count stops moving. Without back-pressure it
          // never stops before the whole stream is sent, which the check below catches.
          let before = sent.get(seed)?.() ?? 0;
          for (let i = 0; i < 50; i++) {
            await sleep(200);
            const now = sent.get(seed)?.() ?? 0;
            if (now === before) break;
            before = now;
          }
          await sleep(300);
          // Stalled: the gateway stopped reading, so the target cannot send more.
          sentWhileStalled = (sent.get(seed)?.() ?? 0) - before;
          expect(before).toBeLessThan(SIZE);
          s.resume();
        }
        await once(s, 'end');
        s.destroy();
        return { got, bad, sentWhileStalled };
      };
      const [a, b] = await Promise.all([receive(1, 700), receive(2, 0)]);
      expect(a).toEqual({ got: SIZE, bad: 0, sentWhileStalled: 0 });
      expect(b).toMatchObject({ got: SIZE, bad: 0 });
      expect(await until(() => g.stats().tunnels === 0)).toBe(true);
    } finally {
      await new Promise<void>((r) => streamer.close(() => r()));
    }
  }, 30_000);

  it('serves health and Prometheus metrics without a client certificate', async () => {
    const g = await startGateway();
    const s = await dial(g.port, { ca: ca.pem });
    await exchange(s, connectLine(`127.0.0.1:${backendPort}`));
    const h = await fetch(`http://127.0.0.1:${g.metricsPort}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ status: 'ok', cores: [{ coreId: 'core_a', routes: 1, revoked: 1 }] });
    const m = await (await fetch(`http://127.0.0.1:${g.metricsPort}/metrics`)).text();
    expect(m).toContain('outpost_gateway_refusals_total{code="GATEWAY_CERT_REQUIRED"} 1');
  });

  it('leaks no file descriptors over a mix of good, refused and garbage connections', async () => {
    const g = await startGateway({ limits: { handshakeBurst: 1000, handshakeRate: 1000, handshakeTimeout: 10_000 } });
    const round = async (): Promise<void> => {
      const jobs: Array<Promise<unknown>> = [];
      for (let i = 0; i < 8; i++) {
        jobs.push(
          (async () => {
            const s = await dial(g.port, { ...leaves.agent!, ca: ca.pem });
            await exchange(s, connectLine(`127.0.0.1:${backendPort}`));
            await exchange(s, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
            s.destroy();
          })(),
          (async () => {
            const s = await dial(g.port, { ...leaves.revoked!, ca: ca.pem });
            await exchange(s, connectLine(`127.0.0.1:${backendPort}`));
            s.destroy();
          })(),
          (async () => {
            const s = netConnect(g.port, '127.0.0.1');
            s.on('error', () => undefined);
            await once(s, 'connect');
            s.end('\x16\x03\x01garbage');
            await Promise.race([once(s, 'close'), sleep(1_000)]);
            s.destroy();
          })(),
        );
      }
      await Promise.all(jobs);
    };
    await round();
    await until(() => g.stats().connections === 0 && g.stats().tunnels === 0);
    await sleep(100);
    const before = openFds();
    await round();
    await round();
    expect(await until(() => g.stats().connections === 0 && g.stats().tunnels === 0)).toBe(true);
    await sleep(100);
    expect(openFds()).toBeLessThanOrEqual(before + 2);
  });
});
