import { createPrivateKey, sign } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { silentLogger, validateConfig } from '@outpost/common';
import { createGateway, gatewayConfigSchema, type Gateway } from '@outpost/gateway';
import { removeDir, tempDir } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../src/transport/transport.js';
import { issue, makeCa, writeLeaf, type Leaf, type TestCa } from '@outpost/testing/pki';

let dir: string;
let ca: TestCa;
let agentLeaf: Leaf;
let caKeyPem: string;
let core: Server;
let portal: Server;
let coreUrl: string;
let portalUrl: string;
let gw: Gateway;

const listen = async (s: Server): Promise<string> => {
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  dir = await tempDir('outpost-transport-');
  ca = await makeCa('core_t');
  const { webcrypto } = await import('node:crypto');
  const pk = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', ca.keys.privateKey));
  caKeyPem = createPrivateKey({ key: pk, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
  agentLeaf = await issue(ca, { id: 'ag_t' });
  // A fake core: health, and a probe signed with the CA key.
  core = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    res.setHeader('content-type', 'application/json');
    if (u.pathname === '/api/v1/health') res.end(JSON.stringify({ status: 'ok', service: 'core' }));
    else if (u.pathname === '/api/v1/ca/probe') {
      const nonce = u.searchParams.get('nonce') ?? '';
      const signature = sign('sha256', Buffer.from(`outpost-probe\0core_t\0${nonce}`), { key: caKeyPem, dsaEncoding: 'ieee-p1363' }).toString('base64');
      res.end(JSON.stringify({ coreId: 'core_t', nonce, signature }));
    } else res.end('{"hello":"core"}');
  });
  // A captive portal: 200 and HTML for everything.
  portal = createServer((_req, res) => res.end('<html>please log in</html>'));
  coreUrl = await listen(core);
  portalUrl = await listen(portal);
  const caFile = join(dir, 'ca.crt');
  await writeFile(caFile, ca.pem);
  const server = await writeLeaf(dir, 'gw', await issue(ca, { id: 'gw', kind: 'site-server', names: ['localhost', '127.0.0.1'] }));
  gw = createGateway(
    validateConfig(gatewayConfigSchema, { dataDir: join(dir, 'gw-data'), listen: { host: '127.0.0.1', port: 0 }, metrics: { enabled: false }, tls: { certFile: server.cert, keyFile: server.key }, cores: [{ caFile, routes: [new URL(coreUrl).host] }] }, { file: 't' }),
    { logger: silentLogger(), processMetrics: false },
  );
  await gw.start();
});

afterAll(async () => {
  await gw.stop();
  for (const s of [core, portal]) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  await removeDir(dir);
});

const transport = (direct: string, gateways: string[], enrolled = true) =>
  createTransport({
    coreUrl: direct,
    tunnelUrl: () => coreUrl,
    gateways,
    credentials: () => ({ ca: [ca.pem], cert: agentLeaf.cert, key: agentLeaf.key }),
    bearer: () => (enrolled ? 'ag_t.secret' : undefined),
    coreId: () => (enrolled ? 'core_t' : undefined),
    probeTimeoutMs: 1_000,
    logger: silentLogger(),
  });

const get = (url: string, agent: import('node:http').Agent): Promise<string> =>
  new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString()));
      res.on('end', () => resolve(t));
    });
    req.on('error', reject);
    req.end();
  });

describe('agent transport', () => {
  it('goes direct when the core answers and signs the probe with our CA', async () => {
    const t = transport(coreUrl, [gw.url]);
    expect(await t.decide()).toEqual({ kind: 'direct' });
    expect(t.coreBase()).toBe(coreUrl);
    t.stop();
  });

  it('takes the gateway when the direct URL is a captive portal, and carries requests through it', async () => {
    const before = gw.stats().tunnelsTotal;
    const t = transport(portalUrl, [gw.url]);
    expect(await t.decide()).toEqual({ kind: 'gateway', url: gw.url });
    expect(await get(`${t.coreBase()}/api/v1/anything`, t.agentFor(t.coreBase()))).toBe('{"hello":"core"}');
    expect(gw.stats().tunnelsTotal).toBeGreaterThan(before);
    t.stop();
  });

  it('tries the gateways in order and skips one that is down', async () => {
    const t = transport('http://127.0.0.1:1', ['https://127.0.0.1:1', gw.url]);
    expect(await t.decide()).toEqual({ kind: 'gateway', url: gw.url });
    t.stop();
  });

  it('refuses a server that answers like a core but cannot sign for our core id', async () => {
    const liar = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/api/v1/health')) res.end('{"status":"ok","service":"core"}');
      else res.end('{"coreId":"core_t","nonce":"x","signature":"AAAA"}');
    });
    const liarUrl = await listen(liar);
    const t = transport(liarUrl, []);
    expect(await t.decide()).toEqual({ kind: 'none' });
    t.stop();
    await new Promise<void>((r) => liar.close(() => r()));
  });
});
