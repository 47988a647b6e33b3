import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '@outpost/testing';
import type { Core } from '../../src/index.js';
import { api, enrollPackageServer, list, sha, startCore } from './helpers.js';

const A = Buffer.from('alpha file\n'.repeat(1000));
const B = Buffer.from('bravo');

describe('core packages API', () => {
  let dir: string;
  let core: Core;
  let call: ReturnType<typeof api>;

  beforeEach(async () => {
    dir = await tempDir('outpost-core-pkg-');
    core = await startCore(dir);
    call = api(core);
  });
  afterEach(async () => {
    await core.stop();
    await removeDir(dir);
  });

  const manifest = [
    { path: 'bin/a.txt', size: A.length, sha256: sha(A) },
    { path: 'b.txt', size: B.length, sha256: sha(B) },
  ];

  it('creates a package, resumes an upload at the offset it reports, and is ready only when every file is in', async () => {
    const created = await call('POST', '/packages', { name: 'demo', version: '1.0', files: manifest });
    expect(created.status).toBe(201);
    expect(created.json.state).toBe('incomplete');
    const id = created.json.id as unknown as string;
    expect(id).toMatch(/^pk_/);
    // Idempotent re-create (resume of `package add`).
    expect((await call('POST', '/packages', { name: 'demo', version: '1.0', files: manifest })).status).toBe(200);
    const half = (await call('PUT', `/packages/${id}/files/bin/a.txt`, A.subarray(0, 4000))).json;
    expect(half.received).toBe(4000);
    expect(half.complete).toBe(false);
    const wrong = await call('PUT', `/packages/${id}/files/bin/a.txt?offset=10`, A.subarray(10));
    expect(wrong.status).toBe(409);
    expect(wrong.json.error.code).toBe('CORE_PACKAGE_UPLOAD_OFFSET');
    expect(wrong.json.error.details.received).toBe(4000);
    const rest = await call('PUT', `/packages/${id}/files/bin/a.txt?offset=4000`, A.subarray(4000));
    expect(rest.json.complete).toBe(true);
    expect((await call('GET', `/packages/${id}`)).json.state).toBe('incomplete');
    const b = await call('PUT', `/packages/demo@1.0/files/b.txt`, B);
    expect(b.json.package).toBe('ready');
    const view = (await call('GET', '/packages/demo')).json;
    expect(view.state).toBe('ready');
    expect(view.id).toBe(id);
    // Content is served back with ETag = sha256 and ranges.
    const ranged = await fetch(`${core.url}/api/v1/packages/${id}/files/bin/a.txt`, { headers: { authorization: `Bearer ${core.adminToken}`, range: 'bytes=-5' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('etag')).toBe(`"${sha(A)}"`);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(A.subarray(A.length - 5));
  });

  it('keeps a package not ready with the reason after oversized, truncated and corrupt uploads', async () => {
    const id = (await call('POST', '/packages', { name: 'bad', version: '1', files: manifest })).json.id as unknown as string;
    const big = await call('PUT', `/packages/${id}/files/b.txt`, Buffer.concat([B, Buffer.from('extra')]));
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('CORE_PACKAGE_UPLOAD_TOO_LARGE');
    const corrupt = await call('PUT', `/packages/${id}/files/b.txt`, Buffer.from('BRAVO'));
    expect(corrupt.status).toBe(422);
    expect(corrupt.json.error.code).toBe('CORE_PACKAGE_HASH_MISMATCH');
    const view = (await call('GET', `/packages/${id}`)).json;
    expect(view.state).toBe('incomplete');
    expect(String(view.problems['b.txt'])).toMatch(/sha256 mismatch/);
    // A truncated body: the client says 11000 bytes and sends 100, then closes.
    const { request } = await import('node:http');
    await new Promise<void>((resolve) => {
      const url = new URL(`${core.url}/api/v1/packages/${id}/files/bin/a.txt`);
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${core.adminToken}`, 'content-length': A.length } });
      req.on('error', () => resolve());
      req.on('response', (r) => {
        r.resume();
        r.on('end', () => resolve());
      });
      req.write(A.subarray(0, 100), () => setTimeout(() => req.destroy(), 50));
    });
    const after = await (async () => {
      for (let i = 0; i < 100; i++) {
        const v = (await call('GET', `/packages/${id}`)).json;
        if (v.problems?.['bin/a.txt']) return v;
        await new Promise((r) => setTimeout(r, 20));
      }
      return (await call('GET', `/packages/${id}`)).json;
    })();
    expect(after.state).toBe('incomplete');
    expect(String(after.problems['bin/a.txt'])).toMatch(/truncated/);
    const missing = list(after.missing).find((m) => (m.path as unknown as string) === 'bin/a.txt')!;
    expect(missing.received).toBe(100);
  });

  it('refuses manifests with traversal, absolute or duplicate paths', async () => {
    for (const path of ['../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a\\b', 'C:/x', 'a/\u0000']) {
      const r = await call('POST', '/packages', { name: 'evil', files: [{ path, size: 1, sha256: sha('x') }] });
      expect(r.status, path).toBe(400);
      expect(r.json.error.code).toBe('CORE_PACKAGE_BAD_MANIFEST');
    }
    const dup = await call('POST', '/packages', { name: 'evil', files: [{ path: 'a', size: 1, sha256: sha('x') }, { path: 'a/b', size: 1, sha256: sha('x') }] });
    expect(dup.status).toBe(400);
  });

  it('refuses to enable to a constrained server with no unconstrained one in its site, and adds a feeder when one exists', async () => {
    await call('POST', '/sites', { name: 'hq', subnets: ['10.1.0.0/16'] });
    await call('POST', '/sites', { name: 'branch', subnets: ['10.2.0.0/16'] });
    const c = await enrollPackageServer(core, 'branch-c', true, '10.2.0.6/24');
    const id = (await call('POST', '/packages', { name: 'p', version: '1', files: [manifest[1]] })).json.id as unknown as string;
    await call('PUT', `/packages/${id}/files/b.txt`, B);
    const refused = await call('POST', `/packages/${id}/enable`, { servers: [c.id] });
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('CORE_PACKAGE_NO_FEEDER');
    expect(refused.json.error.message).toMatch(/branch/);
    const u = await enrollPackageServer(core, 'branch-u', false, '10.2.0.5/24');
    const ok = await call('POST', `/packages/${id}/enable`, { servers: [c.id] });
    expect(ok.status).toBe(200);
    expect(list(ok.json.warnings)[0]).toMatch(/branch-u/);
    const servers = list(ok.json.servers);
    expect(servers.map((s) => s.name)).toEqual(['branch-u', 'branch-c']);
    // The constrained one waits for a source in its site; the feeder is released.
    expect(servers[0]!.released).toBe(true);
    expect(servers[1]!.released).toBe(false);
    expect(servers[1]!.waitingFor).toMatch(/in its site/);
    // Assignments: the feeder's only sources are the core; the constrained one has none yet.
    const asU = api(core, u.credential);
    const asC = api(core, c.credential);
    const aU = (await asU('GET', `/package-servers/${u.id}/assignments`)).json;
    expect(list(list(aU.items)[0]!.sources).map((s) => s.kind)).toEqual(['core']);
    expect(list((await asC('GET', `/package-servers/${c.id}/assignments`)).json.items)).toHaveLength(0);
    // The feeder reports ready: the constrained server is released with only the feeder as source.
    const hash = list(aU.items)[0]!.manifestHash;
    await asU('POST', `/package-servers/${u.id}/status`, { items: [{ id, manifestHash: hash, state: 'ready', bytesDone: B.length, bytesTotal: B.length }] });
    const aC = (await asC('GET', `/package-servers/${c.id}/assignments`)).json;
    expect(list(list(aC.items)[0]!.sources).map((s) => s.url)).toEqual([`http://127.0.0.1:1/branch-u/packages/${id}`]);
    // Another server may not read or report for it.
    expect((await asC('GET', `/package-servers/${u.id}/assignments`)).status).toBe(403);
    const view = (await call('GET', `/packages/${id}`)).json;
    expect(list(view.servers)[0]!.codebase).toBe(`http://127.0.0.1:1/branch-u/packages/${id}`);
  });

  it('deletes a package and frees content no other package holds, at once', async () => {
    const p1 = (await call('POST', '/packages', { name: 'one', version: '1', files: manifest })).json.id as unknown as string;
    const p2 = (await call('POST', '/packages', { name: 'two', version: '1', files: [manifest[1]] })).json.id as unknown as string;
    await call('PUT', `/packages/${p1}/files/bin/a.txt`, A);
    await call('PUT', `/packages/${p1}/files/b.txt`, B);
    expect((await call('GET', `/packages/${p2}`)).json.state).toBe('ready');
    const del = await call('DELETE', `/packages/${p1}`);
    expect(del.json.freedBytes).toBe(A.length);
    const content = join(dir, 'core', 'content', 'sha256');
    const left = (await Promise.all((await readdir(content)).map((d) => readdir(join(content, d))))).flat();
    expect(left).toEqual([sha(B)]);
    expect((await call('GET', `/packages/${p1}`)).status).toBe(404);
  });
});
