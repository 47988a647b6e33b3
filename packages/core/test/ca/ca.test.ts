import { X509Certificate, verify as cryptoVerify } from 'node:crypto';
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKeyAndCsr } from '@outpost/common';
import { expectErrorsDocumented } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { CaErrors } from '../../src/ca/errors.js';
import { cleanup, createToken, startCore } from '../integration/harness.js';

afterEach(cleanup);

const enrollWithCsr = async (tc: Awaited<ReturnType<typeof startCore>>, name: string, extra: Record<string, unknown> = {}) => {
  const { keyPem, csrPem } = createKeyAndCsr(name);
  const r = await tc.call('POST', '/enroll', { token: null, body: { token: await createToken(tc, 'agent'), name, csr: csrPem, ...extra } });
  return { r, keyPem };
};

describe('certificate authority', () => {
  it('creates an ECDSA P-256 CA on first start (key mode 0600) and keeps it across restarts', async () => {
    const tc = await startCore();
    const keyStat = await stat(join(tc.dir, 'ca', 'ca.key'));
    expect(keyStat.mode & 0o777).toBe(0o600);
    const pem = (await tc.call('GET', '/ca/certificate')).body as string;
    const ca = new X509Certificate(pem);
    expect(ca.ca).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const dir = tc.dir;
    await tc.stop();
    const again = await startCore({ dir });
    expect((await again.call('GET', '/ca/certificate')).body).toBe(pem);
  });

  it('issues at enrollment a certificate naming the agent id, its kind and the core, chained to the CA', async () => {
    const tc = await startCore();
    const { r } = await enrollWithCsr(tc, 'pc-1');
    expect(r.status).toBe(201);
    const cert = new X509Certificate(r.body.certificate);
    const ca = new X509Certificate(r.body.caCertificate);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.subject).toContain(`CN=${r.body.id}`);
    expect(cert.subjectAltName).toBe(`URI:outpost://${r.body.coreId}/agent/${r.body.id}`);
    expect(r.body.coreUrl).toBe(tc.url);
  });

  it('refuses a bad CSR with CORE_CA_BAD_CSR and does not spend the token', async () => {
    const tc = await startCore();
    const token = await createToken(tc, 'agent');
    const { csrPem } = createKeyAndCsr('x');
    const tampered = csrPem.replace(/A/g, 'B');
    for (const csr of ['not a csr', tampered]) {
      const r = await tc.call('POST', '/enroll', { token: null, body: { token, name: 'bad', csr } });
      expect(r.status, csr.slice(0, 20)).toBe(400);
      expect(r.body.error.code).toBe(CaErrors.BAD_CSR);
    }
    const ok = await tc.call('POST', '/enroll', { token: null, body: { token, name: 'good', csr: csrPem } });
    expect(ok.status).toBe(201);
  });

  it('renews for the holder, revokes on block, and feeds revocations and a CRL to gateways', async () => {
    const tc = await startCore();
    const { r } = await enrollWithCsr(tc, 'pc-2');
    const cred = r.body.credential as string;
    const renewed = await tc.call('POST', '/ca/renew', { token: cred, body: { csr: createKeyAndCsr('pc-2').csrPem } });
    expect(renewed.status).toBe(201);
    expect(renewed.body.serial).not.toBe(new X509Certificate(r.body.certificate).serialNumber.toLowerCase());
    const blocked = await tc.call('POST', `/ca/principals/${r.body.id}/block`, { body: { reason: 'stolen laptop' } });
    expect(blocked.status).toBe(200);
    expect(blocked.body.revoked).toHaveLength(2);
    const ss = await tc.call('POST', '/enroll', { token: null, body: { token: await createToken(tc, 'site-server', { grant: { services: { gateway: true }, names: ['gw'] } }), name: 'gw', services: { gateway: { url: 'https://gw:8443' } } } });
    const feed = await tc.call('GET', '/ca/revocations?since=0', { token: ss.body.credential });
    expect(feed.status).toBe(200);
    expect(feed.body.items.map((e: { type: string }) => e.type)).toEqual(['revoke', 'revoke']);
    expect((await tc.call('GET', `/ca/revocations?since=${feed.body.seq}`, { token: ss.body.credential })).body.items).toEqual([]);
    const crl = await tc.call('GET', '/ca/crl?format=pem', { token: ss.body.credential });
    expect(crl.body).toContain('BEGIN X509 CRL');
    // A blocked principal gets no new certificate.
    const again = await tc.call('POST', '/ca/renew', { token: cred, body: { csr: createKeyAndCsr('pc-2').csrPem } });
    expect(again.body.error.code).toBe(CaErrors.BLOCKED);
    // Agents may not read the feed.
    expect((await tc.call('GET', '/ca/revocations', { token: cred })).status).toBe(403);
  });

  it('revokes the certificates of a deleted agent at the next reconcile', async () => {
    const tc = await startCore({ config: { ca: { reconcileInterval: '50ms' } } });
    const { r } = await enrollWithCsr(tc, 'pc-3');
    expect((await tc.call('DELETE', `/agents/${r.body.id}`)).status).toBe(204);
    const deadline = Date.now() + 5_000;
    let state = '';
    while (Date.now() < deadline && state !== 'revoked') {
      state = (await tc.call('GET', `/ca/certificates?principal=${r.body.id}`)).body.items[0].state;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(state).toBe('revoked');
  });

  it('holds new agent certificates in quarantine with policy hold until an admin approves', async () => {
    const tc = await startCore({ config: { ca: { quarantine: 'hold' } } });
    const { r } = await enrollWithCsr(tc, 'pc-4');
    const q = await tc.call('GET', '/ca/quarantine');
    expect(q.body.items).toMatchObject([{ principal: r.body.id, kind: 'agent' }]);
    expect((await tc.call('POST', `/ca/quarantine/${r.body.id}/approve`)).status).toBe(200);
    expect((await tc.call('GET', '/ca/quarantine')).body.items).toEqual([]);
    expect((await tc.call('POST', `/ca/quarantine/${r.body.id}/approve`)).body.error.code).toBe(CaErrors.NOT_QUARANTINED);
  });

  it('signs a probe nonce with the CA key so an agent knows it reached its own core', async () => {
    const tc = await startCore();
    const { r } = await enrollWithCsr(tc, 'pc-5');
    const p = await tc.call('GET', '/ca/probe?nonce=abcdef0123456789', { token: r.body.credential });
    const ca = new X509Certificate(r.body.caCertificate);
    const ok = cryptoVerify('sha256', Buffer.from(`outpost-probe\0${r.body.coreId}\0abcdef0123456789`), { key: ca.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(p.body.signature, 'base64'));
    expect(ok).toBe(true);
  });

  it('serves the gateway routing table (core and site-server URLs, with the addresses to dial) to gateways only, with an ETag', async () => {
    const tc = await startCore();
    const pkg = await tc.call('POST', '/enroll', {
      token: null,
      body: { token: await createToken(tc, 'site-server', { grant: { services: { package: { constrained: false } }, names: ['pkg.test'], addresses: ['10.9.0.5'] } }), name: 'pkg', services: { package: { constrained: false, url: 'http://pkg.test:8081' } } },
    });
    const gw = await tc.call('POST', '/enroll', { token: null, body: { token: await createToken(tc, 'site-server', { grant: { services: { gateway: true }, names: ['gw'] } }), name: 'gw', services: { gateway: { url: 'https://gw:8443' } } } });
    const t = await tc.call('GET', '/gateway/routes', { token: gw.body.credential });
    expect(t.body.targets.map((x: { target: string; addresses: string[] }) => [x.target, x.addresses])).toEqual([
      [new URL(tc.url).host, ['127.0.0.1']],
      ['pkg.test:8081', ['10.9.0.5']],
    ]);
    const again = await tc.call('GET', '/gateway/routes', { token: gw.body.credential, headers: { 'if-none-match': t.headers.get('etag')! } });
    expect(again.status).toBe(304);
    // A package server holds a site-server credential too, but is no gateway.
    for (const [method, path] of [['GET', '/gateway/routes'], ['GET', '/ca/revocations?since=0'], ['POST', '/gateway/connections']] as const) {
      const r = await tc.call(method, path, { token: pkg.body.credential, ...(method === 'POST' ? { body: { name: 'x', connections: [] } } : {}) });
      expect(r.status, path).toBe(403);
      expect(r.body.error.code, path).toBe(CaErrors.NOT_A_GATEWAY);
    }
  });

  it('serves HTTPS with a server certificate from its own CA when ca.https.enabled', async () => {
    const tc = await startCore({ config: { ca: { https: { enabled: true } } } });
    expect(tc.url.startsWith('https://')).toBe(true);
    const pem = await readFile(join(tc.dir, 'ca', 'ca.crt'), 'utf8');
    const { request } = await import('node:https');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${tc.url}/api/v1/health`, { ca: pem }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
  });

  it('documents every CORE_CA_* code in src/ca/README.md', async () => {
    await expectErrorsDocumented(fileURLToPath(new URL('../../src/ca/README.md', import.meta.url)), Object.values(CaErrors));
  });
});
