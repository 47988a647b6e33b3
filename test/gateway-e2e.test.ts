// End to end: a real core with its CA, a gateway linked to it (enrolled with a
// site-server token), an agent that enrolls *through* the gateway without a
// certificate, then reaches the core through a CONNECT tunnel with the certificate it
// got; revocation at the core closes its tunnel and refuses it; a core that goes away
// leaves the gateway running on its last good copy, with a stale alarm.
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createKeyAndCsr, silentLogger, validateConfig } from '@outpost/common';
import { createCore, coreConfigSchema, type Core } from '@outpost/core';
import { createGateway, gatewayConfigSchema, type Gateway } from '@outpost/gateway';
import { grantFor, removeDir, tempDir } from '@outpost/testing';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dial, exchange, run, until } from '../packages/gateway/test/helpers.js';

/** The grant of a gateway on loopback (its default tls.names: localhost, 127.0.0.1). */
const gatewayToken = async (c: Core): Promise<{ token: string }> => c.createEnrollmentToken({ for: 'site-server', grant: grantFor({ gateway: { url: 'https://127.0.0.1:1' } }, { names: ['localhost'] }) });

/** Runs a command with extra environment; stdout+stderr, bounded to 15 s. */
function runEnv(cmd: string, args: string[], env: Record<string, string>): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ out, code });
    });
  });
}

let dir: string;
let core: Core;
let gw: Gateway;

const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
  const r = await fetch(`${core.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${core.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
};

beforeAll(async () => {
  dir = await tempDir('outpost-gw-e2e-');
  core = createCore(validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, ca: { reconcileInterval: '100ms' } }, { file: 'e2e' }), { logger: silentLogger() });
  await core.start();
  const { token } = await gatewayToken(core);
  gw = createGateway(
    validateConfig(
      gatewayConfigSchema,
      {
        name: 'gw-e2e',
        dataDir: join(dir, 'gw'),
        listen: { host: '127.0.0.1', port: 0 },
        metrics: { host: '127.0.0.1', port: 0 },
        cores: [{ url: core.url, enrollToken: token }],
        refreshInterval: '200ms',
        reportInterval: '200ms',
        staleAfter: '1s',
        sweepInterval: '1s',
      },
      { file: 'e2e' },
    ),
    { logger: silentLogger(), processMetrics: false },
  );
  await gw.start();
});

afterAll(async () => {
  await gw?.stop();
  await core?.stop().catch(() => undefined);
  await removeDir(dir);
});

describe('Internet gateway end to end', () => {
  it('enrolls an agent through the gateway, tunnels it to the core, reports it, and cuts it off when revoked', async () => {
    // The gateway enrolled as a site server and got its certificate from the core's CA.
    const h = await (await fetch(`http://127.0.0.1:${gw.metricsPort}/health`)).json();
    expect(h.cores[0], JSON.stringify(h)).toMatchObject({ linked: true, stale: false, routes: 1 });
    const caRes = await fetch(`${core.url}/api/v1/ca/certificate`, { headers: { authorization: `Bearer ${core.adminToken}` } });
    const ca = await caRes.text();
    const caFile = join(dir, 'ca.crt');
    await writeFile(caFile, ca);

    // 1. Enrollment through the gateway, without a client certificate.
    const { token } = await core.createEnrollmentToken({ for: 'agent' });
    const { keyPem, csrPem } = createKeyAndCsr('roaming-laptop');
    const body = JSON.stringify({ token, name: 'roaming-laptop', csr: csrPem });
    const anon = await dial(gw.port, { ca });
    const answer = await exchange(anon, `POST /api/v1/enroll HTTP/1.1\r\nHost: ${new URL(core.url).host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    expect(answer).toMatch(/^HTTP\/1\.1 201/);
    const enrolled = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    expect(enrolled.certificate).toContain('BEGIN CERTIFICATE');
    const certFile = join(dir, 'agent.crt');
    const keyFile = join(dir, 'agent.key');
    await writeFile(certFile, enrolled.certificate);
    await writeFile(keyFile, keyPem, { mode: 0o600 });

    // 2. curl through the gateway (CONNECT) to the core, with the agent's credential.
    const curl = await run('curl', ['-sS', '--max-time', '5', '--proxytunnel', '--proxy', `https://127.0.0.1:${gw.port}`, '--proxy-cert', certFile, '--proxy-key', keyFile, '--proxy-cacert', caFile,
      '-H', `authorization: Bearer ${enrolled.credential}`, '-H', 'content-type: application/json', '-d', '{}', `${core.url}/api/v1/agents/${enrolled.id}/heartbeat`], '');
    expect(JSON.parse(curl.out)).toHaveProperty('configSerial');
    expect((await admin('GET', `/agents/${enrolled.id}`)).body.lastContactVia).toBe('http');

    // 3. A held-open tunnel shows up in the core's connection table.
    const tunnel = await dial(gw.port, { cert: enrolled.certificate, key: keyPem, ca });
    const target = new URL(core.url).host;
    expect(await exchange(tunnel, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`)).toContain('200 Connection Established');
    expect(await until(async () => (await admin('GET', '/gateway/connections')).body.items.some((c: { principal: string }) => c.principal === enrolled.id))).toBe(true);

    const cli = (args: string[]) => runEnv(process.execPath, [join(process.cwd(), 'appliance/dist/cli.js'), ...args], { OUTPOST_URL: core.url, OUTPOST_TOKEN: core.adminToken });
    const listed = await cli(['gateway', 'connections']);
    expect(listed.out).toContain(enrolled.id);

    // 4. Revocation at the core (outpost agent revoke) closes the tunnel within seconds; the next connection is refused.
    const closed = once(tunnel, 'close');
    const t0 = Date.now();
    const revoked = await cli(['agent', 'revoke', enrolled.id, '--reason', 'e2e']);
    expect(revoked.out).toContain('certificate(s) revoked');
    await closed;
    expect(Date.now() - t0).toBeLessThan(10_000);
    const again = await dial(gw.port, { cert: enrolled.certificate, key: keyPem, ca });
    expect(await exchange(again, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`)).toContain('GATEWAY_CERT_REVOKED');
  });

  it('keeps routes and revocations when the core goes away, and raises the stale alarm', async () => {
    await core.stop();
    expect(await until(async () => (await fetch(`http://127.0.0.1:${gw.metricsPort}/health`)).status === 503, 8_000)).toBe(true);
    const h = await (await fetch(`http://127.0.0.1:${gw.metricsPort}/health`)).json();
    expect(h.cores[0]).toMatchObject({ stale: true, linked: true });
    expect(h.cores[0].routes).toBeGreaterThan(0);
    expect(h.cores[0].revoked).toBeGreaterThan(0);
  });
});
