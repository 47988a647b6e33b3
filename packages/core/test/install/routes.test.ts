import { createPublicKey, verify } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '@outpost/testing';
import { cleanup, createToken, enrollAgent, enrollSiteServer, newDataDir, startCore, type TestCore } from '../integration/harness.js';

const AGENT = Buffer.from('#!/bin/sh\necho not really an agent\n');
let tc: TestCore;
let dir: string;

const get = (path: string): Promise<Response> => fetch(`${tc.url}${path}`);
const script = (token: string): Promise<Response> => get(`/install/agent.sh?token=${encodeURIComponent(token)}`);
async function refusedWith(res: Response): Promise<string> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  return `${res.status} ${body.error.code}`;
}

beforeEach(async () => {
  dir = join(await newDataDir(), 'artifacts');
  await mkdir(dir);
  await writeFile(join(dir, 'outpost-agent-linux-x64'), AGENT);
  await writeFile(join(dir, 'outpost-agent-linux-x64.sha256'), 'side file, not served\n');
  tc = await startCore({ config: { install: { dir } } });
});
afterEach(cleanup);

describe('GET /install/agent.sh', () => {
  it('answers a live agent token with an sh script that carries it, and fetching does not spend a use', async () => {
    const token = await createToken(tc, 'agent', { uses: 1 });
    for (let i = 0; i < 3; i++) {
      const res = await script(token);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/x-shellscript/);
      const text = await res.text();
      expect(text.startsWith('#!/bin/sh\n')).toBe(true);
      expect(text).toContain(`TOKEN='${token}'`);
      expect(text).toContain(`CORE_URL='${tc.url}'`);
    }
    const tokens = await tc.call('GET', '/tokens');
    expect(tokens.body.items.find((t: { token?: string; id: string }) => token.startsWith(`${t.id}.`)).usesLeft).toBe(1);
    await enrollAgent(tc, 'after-script', {}, token);
  });

  it('refuses a bad, an expired, a used-up and a site-server token with one code that says no more', async () => {
    const good = await createToken(tc, 'agent');
    const [id] = good.split('.');
    expect(await refusedWith(await script('garbage'))).toBe('401 CORE_INSTALL_TOKEN_REFUSED');
    expect(await refusedWith(await script(`${id}.${'0'.repeat(43)}`))).toBe('401 CORE_INSTALL_TOKEN_REFUSED');

    const usedUp = await createToken(tc, 'agent', { uses: 1 });
    await enrollAgent(tc, 'spends-it', {}, usedUp);
    const usedRes = await script(usedUp);
    expect(await refusedWith(usedRes)).toBe('401 CORE_INSTALL_TOKEN_REFUSED');

    const site = await createToken(tc, 'site-server', { grant: { services: { task: true } } });
    expect(await refusedWith(await script(site))).toBe('401 CORE_INSTALL_TOKEN_REFUSED');

    const expiring = await createToken(tc, 'agent', { expires: '1h' });
    expect((await script(expiring)).status).toBe(200);
    tc.clock.advance(60 * 60 * 1000 + 1);
    const expiredRes = await script(expiring);
    const message = ((await expiredRes.clone().json()) as { error: { message: string } }).error.message;
    expect(await refusedWith(expiredRes)).toBe('401 CORE_INSTALL_TOKEN_REFUSED');
    expect(message).not.toMatch(/expire|used|site/i);
  });

  it('needs the token in the query (400), and no other query key', async () => {
    expect((await get('/install/agent.sh')).status).toBe(400);
    const token = await createToken(tc, 'agent');
    expect((await get(`/install/agent.sh?token=${token}&x=1`)).status).toBe(400);
  });
});

describe('GET /install/files/:name', () => {
  it('serves a file of the manifest byte for byte, with its sha256', async () => {
    const res = await get('/install/files/outpost-agent-linux-x64');
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(AGENT);
    const manifest = (await (await get('/install/manifest')).json()) as { files: Array<{ name: string; sha256: string }> };
    expect(res.headers.get('x-outpost-sha256')).toBe(manifest.files[0]!.sha256);
  });

  it('answers 404 for an unknown file, a side file and anything outside the directory', async () => {
    for (const name of ['nope', 'outpost-agent-linux-x64.sha256']) {
      const res = await get(`/install/files/${name}`);
      expect(await refusedWith(res)).toBe('404 CORE_INSTALL_FILE_NOT_FOUND');
    }
    await writeFile(join(tc.dir, 'secret'), 'core data');
    for (const name of ['..%2Fsecret', '%2E%2E%2Fsecret', '.hidden']) {
      expect((await get(`/install/files/${name}`)).status).toBeGreaterThanOrEqual(400);
    }
    expect((await get('/install/files/../secret')).status).toBe(404);
  });
});

describe('GET /install/manifest', () => {
  async function corePublicKey() {
    return createPublicKey(await readFile(join(tc.dir, 'work-key', 'work.key'), 'utf8'));
  }

  it("is signed with the core's work-signing key and lists name, size and sha256 of each file", async () => {
    const m = (await (await get('/install/manifest')).json()) as { manifest: string; signature: string; files: Array<{ name: string; size: number; sha256: string }> };
    expect(m.files.map((f) => f.name)).toEqual(['outpost-agent-linux-x64']);
    expect(m.files[0]!.size).toBe(AGENT.length);
    expect(m.manifest).toBe(`outpost-install-manifest 1\ncore ${tc.url}\n${m.files[0]!.sha256} ${AGENT.length} outpost-agent-linux-x64\n`);
    const key = await corePublicKey();
    expect(verify(null, Buffer.from(m.manifest), key, Buffer.from(m.signature, 'base64'))).toBe(true);
  });

  it('does not verify when one byte of the manifest or of the signature changes', async () => {
    const m = (await (await get('/install/manifest')).json()) as { manifest: string; signature: string };
    const key = await corePublicKey();
    const bytes = Buffer.from(m.manifest);
    for (const at of [0, bytes.length >> 1, bytes.length - 2]) {
      const changed = Buffer.from(bytes);
      changed[at] = changed[at]! ^ 1;
      expect(verify(null, changed, key, Buffer.from(m.signature, 'base64'))).toBe(false);
    }
    const sig = Buffer.from(m.signature, 'base64');
    sig[5] = sig[5]! ^ 1;
    expect(verify(null, bytes, key, sig)).toBe(false);
  });

  it('follows the directory: a rebuilt file is listed with its new hash', async () => {
    const before = (await (await get('/install/manifest')).json()) as { files: Array<{ sha256: string }> };
    await writeFile(join(dir, 'outpost-agent-linux-x64'), Buffer.concat([AGENT, Buffer.from('# rebuilt, a bigger file\n')]));
    const after = (await (await get('/install/manifest')).json()) as { files: Array<{ sha256: string }> };
    expect(after.files[0]!.sha256).not.toBe(before.files[0]!.sha256);
  });
});

describe('install files staged to a site (POST /api/v1/install/stage, agent tokens with a site)', () => {
  beforeEach(async () => {
    expect((await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.9.0.0/16'] } })).status).toBe(201);
  });

  it('an agent token names an existing site; a site-server token names its sites in its grant only', async () => {
    const ok = await tc.call('POST', '/tokens', { body: { for: 'agent', site: 'branch' } });
    expect(ok.status).toBe(201);
    expect(ok.body.site).toBe('branch');
    expect((await tc.call('GET', '/tokens')).body.items.find((t: { id: string }) => t.id === ok.body.id).site).toBe('branch');
    const unknown = await tc.call('POST', '/tokens', { body: { for: 'agent', site: 'nowhere' } });
    expect(`${unknown.status} ${unknown.body.error.code}`).toBe('404 CORE_SITE_NOT_FOUND');
    const ss = await tc.call('POST', '/tokens', { body: { for: 'site-server', site: 'branch', grant: { services: { task: true } } } });
    expect(`${ss.status} ${ss.body.error.code}`).toBe('400 CORE_GRANT_NOT_ALLOWED');
  });

  it('is for administrators: no credential is 401, an agent or a site server is refused, an unknown site is 404', async () => {
    expect((await tc.call('POST', '/install/stage', { body: { site: 'branch' }, token: null })).status).toBe(401);
    const agent = await enrollAgent(tc, 'pc');
    expect((await tc.call('POST', '/install/stage', { body: { site: 'branch' }, token: agent.credential })).status).toBe(403);
    const ss = await enrollSiteServer(tc, 'branch-ps', { address: '10.9.0.5/24', services: { package: { constrained: false, url: 'http://127.0.0.1:1' } } });
    expect((await tc.call('POST', '/install/stage', { body: { site: 'branch' }, token: ss.credential })).status).toBe(403);
    expect((await tc.call('GET', '/packages')).body.items).toEqual([]);
    const unknown = await tc.call('POST', '/install/stage', { body: { site: 'nowhere' } });
    expect(`${unknown.status} ${unknown.body.error.code}`).toBe('404 CORE_SITE_NOT_FOUND');
    expect((await tc.call('POST', '/install/stage', { body: { site: 'branch', extra: 1 } })).status).toBe(400);
  });

  it('a site without a package server: published, nothing staged, a warning says the core serves', async () => {
    const r = await tc.call('POST', '/install/stage', { body: { site: 'branch' } });
    expect(r.status).toBe(200);
    expect(r.body.servers).toEqual([]);
    expect(r.body.warnings).toEqual(['site branch has no package server: its machines download the install files from the core']);
    const pkgs = (await tc.call('GET', '/packages')).body.items;
    expect(pkgs).toHaveLength(1);
    expect(pkgs[0]).toMatchObject({ name: 'outpost-agent-install', state: 'ready', enabled: false });
  });

  it('a rebuilt agent: the next link of the site restages the new version to the same servers and deletes the old one', async () => {
    const ss = await enrollSiteServer(tc, 'branch-ps', { address: '10.9.0.5/24', services: { package: { constrained: false, url: 'http://127.0.0.1:1' } } });
    const first = await tc.call('POST', '/install/stage', { body: { site: 'branch' } });
    expect(first.body.servers.map((s: { id: string }) => s.id)).toEqual([ss.id]);
    const oldId = first.body.package.id as string;
    // Staged again unchanged: the same version, nothing new.
    expect((await tc.call('POST', '/install/stage', { body: { site: 'branch' } })).body.package.id).toBe(oldId);
    await writeFile(join(dir, 'outpost-agent-linux-x64'), Buffer.concat([AGENT, Buffer.from('# rebuilt\n')]));
    const text = await (await script(await createToken(tc, 'agent', { site: 'branch' }))).text();
    expect(text).toMatch(/^MIRRORS=''$/m);
    const now = await waitFor(async () => {
      const items = (await tc.call('GET', '/packages')).body.items as Array<{ id: string; enabled: boolean }>;
      return items.length === 1 && items[0]!.id !== oldId && items[0]!.enabled && items[0]!;
    }, { timeoutMs: 10_000, what: 'the new version staged and the old one deleted' });
    const view = (await tc.call('GET', `/packages/${now.id}`)).body;
    expect(view.servers.map((s: { id: string }) => s.id)).toEqual([ss.id]);
    const manifest = (await tc.call('GET', `/packages/${now.id}/manifest`)).body;
    expect(JSON.stringify(manifest)).toContain('outpost-agent-linux-x64');
  });
});
