import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { request } from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir, removeDir, waitFor } from '@outpost/testing';
import { Authority } from '../../src/ca/authority.js';
import { issueLinkCert } from '../../src/hierarchy/tls.js';
import { cleanup, enrollAgent, newDataDir, startCore } from './harness.js';
import { connect, FAST, join, parentAndChild, rogueChild } from './hierarchy-helpers.js';

afterEach(cleanup);

const task = { name: 'hello', kind: 'command', program: '/bin/echo', args: ['hi'] };
const job = { name: 'greet', steps: [{ task: 'hello' }] };

describe('hierarchy: a parent and a child core', () => {
  it("joins with a one-use token; the parent's tasks and jobs come down read-only; the child's agents go up", async () => {
    const { parent, child, token, url } = await parentAndChild();
    expect((await parent.call('POST', '/tasks', { body: task })).status).toBe(201);
    expect((await parent.call('POST', '/jobs', { body: job })).status).toBe(201);
    expect((await child.call('POST', '/tasks', { body: { ...task, name: 'local' } })).status).toBe(201);
    await join(child, url, token);

    await waitFor(async () => (await child.call('GET', '/jobs/greet')).status === 200, { timeoutMs: 5_000, what: 'the job on the child' });
    expect((await child.call('GET', '/tasks/hello')).body.program).toBe('/bin/echo');
    // Read-only on the child: a change to the parent's task is refused with a code; its own task is its own.
    const put = await child.call('PUT', '/tasks/hello', { body: { ...task, args: ['changed'] } });
    expect(put.status).toBe(409);
    expect(put.body.error.code).toBe('CORE_HIERARCHY_READ_ONLY');
    expect((await child.call('DELETE', '/jobs/greet')).body.error.code).toBe('CORE_HIERARCHY_READ_ONLY');
    expect((await child.call('PUT', '/tasks/local', { body: { ...task, name: 'local', args: ['mine'] } })).status).toBe(200);
    // The local task does not go up or down: the parent never sees it.
    expect((await parent.call('GET', '/tasks/local')).status).toBe(404);

    // A change on the parent reaches the child within seconds; a delete too.
    expect((await parent.call('PUT', '/tasks/hello', { body: { ...task, args: ['v2'] } })).status).toBe(200);
    await waitFor(async () => (await child.call('GET', '/tasks/hello')).body.args?.[0] === 'v2', { timeoutMs: 5_000, what: 'the change on the child' });

    // Up: an agent enrolled on the child shows on the parent with its core.
    const agent = await enrollAgent(child, 'pc-emea-1', { macs: ['52:54:00:00:00:01'], os: 'Linux 6.1' });
    await waitFor(async () => ((await parent.call('GET', '/hierarchy/agents')).body.items as Array<{ id: string }>).some((a) => a.id === agent.id), { timeoutMs: 5_000, what: 'the agent on the parent' });
    const seen = ((await parent.call('GET', '/hierarchy/agents')).body.items as Array<Record<string, unknown>>).find((a) => a.id === agent.id)!;
    const childId = (await child.call('GET', '/hierarchy')).body.core.id;
    expect(seen).toMatchObject({ core: childId, name: 'pc-emea-1', os: 'Linux 6.1' });

    const status = (await parent.call('GET', '/hierarchy')).body;
    expect(status.children).toHaveLength(1);
    expect(status.children[0]).toMatchObject({ id: childId, name: 'emea', state: 'ok', connected: true, lastError: null });
    expect(status.children[0].bytes.down).toBeGreaterThan(0);
    expect(status.children[0].bytes.up).toBeGreaterThan(0);
    const mine = (await child.call('GET', '/hierarchy')).body;
    expect(mine.parent).toMatchObject({ name: 'hq', state: 'ok', connected: true, url });

    // The token was used: a second core cannot join with it.
    const other = await startCore({ config: { hierarchy: FAST } });
    const again = await other.call('POST', '/hierarchy/join', { body: { url, token } });
    expect(again.status).toBe(403);
    expect(again.body.error.code).toBe('CORE_HIERARCHY_TOKEN_USED');
  });

  it('refuses an expired token, a token of another core and a second join', async () => {
    const { parent, child, url } = await parentAndChild();
    const short = await parent.call('POST', '/hierarchy/tokens', { body: { expires: '1s' } });
    parent.clock.advance(2_000);
    const late = await child.call('POST', '/hierarchy/join', { body: { url, token: short.body.token } });
    expect(late.body.error.code).toBe('CORE_HIERARCHY_TOKEN_EXPIRED');
    // A token whose CA fingerprint is not the listener's: the child refuses before sending anything.
    const foreign = await startCore({ config: { hierarchy: { listen: { host: '127.0.0.1', port: 0 } } } });
    const ft = (await foreign.call('POST', '/hierarchy/tokens', { body: {} })).body.token as string;
    const mismatch = await child.call('POST', '/hierarchy/join', { body: { url, token: ft } });
    expect(mismatch.body.error.code).toBe('CORE_HIERARCHY_CA_MISMATCH');
    const ok = (await parent.call('POST', '/hierarchy/tokens', { body: {} })).body.token as string;
    await join(child, url, ok);
    const twice = await child.call('POST', '/hierarchy/join', { body: { url, token: (await parent.call('POST', '/hierarchy/tokens', { body: {} })).body.token } });
    expect(twice.body.error.code).toBe('CORE_HIERARCHY_ALREADY_JOINED');
  });
});

describe('hierarchy: the link is a trust boundary', () => {
  it('a child authors only what describes itself: summaries of the parent or of another child, and down items, are refused', async () => {
    const { parent, child, token, url } = await parentAndChild();
    await join(child, url, token);
    const honestId = (await child.call('GET', '/hierarchy')).body.core.id as string;
    const parentId = (await parent.call('GET', '/hierarchy')).body.core.id as string;
    await waitFor(async () => ((await parent.call('GET', '/hierarchy')).body.children[0]?.cores ?? []).includes(honestId), { timeoutMs: 5_000, what: 'the honest child up' });
    const rogue = await rogueChild(parent, url);
    try {
      const c = await connect(url, rogue);
      if (!('ws' in c)) throw new Error(`rogue refused: ${c.refused}`);
      c.ws.send(JSON.stringify({ t: 'hello', down: 0, name: 'rogue' }));
      await waitFor(() => c.messages.some((m) => m.t === 'welcome'), { timeoutMs: 3_000, what: 'welcome' });
      const forged = (core: string, id: string) => ({ k: `!hier-up!${core}!agent!${id}`, v: JSON.stringify({ core, kind: 'agent', id, name: 'forged', macs: [] }) });
      c.ws.send(
        JSON.stringify({
          t: 'up',
          to: 5,
          entries: [
            { s: 1, o: [forged(parentId, 'ag_parent')] },
            { s: 2, o: [forged(honestId, 'ag_sibling')] },
            { s: 3, o: [{ k: '!admins!evil', v: JSON.stringify({ name: 'evil', roles: ['owner'] }) }] },
            { s: 4, o: [{ k: `!hier-results!hr_x!${honestId}!ag_1`, v: JSON.stringify({ core: honestId, agent: 'ag_1', state: 'succeeded', at: 1 }) }] },
            { s: 5, o: [forged(rogue.id, 'ag_mine')] },
          ],
        }),
      );
      await waitFor(() => c.messages.some((m) => m.t === 'ack' && m.up === 5), { timeoutMs: 3_000, what: 'ack' });
      const refused = c.messages.find((m) => m.t === 'refused');
      expect(refused?.reason).toMatch(/refused 4 up item/);
      const agents = ((await parent.call('GET', '/hierarchy/agents')).body.items as Array<{ id: string; core: string }>).map((a) => a.id);
      expect(agents).toContain('ag_mine');
      expect(agents).not.toContain('ag_parent');
      expect(agents).not.toContain('ag_sibling');
      expect(((await parent.call('GET', '/admins')).body.items as Array<{ name: string }>).map((a) => a.name)).not.toContain('evil');
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it('nobody else gets a link: no certificate, a certificate of an unjoined CA, a removed child (at once, open links closed)', async () => {
    const { parent, child, token, url } = await parentAndChild();
    const ca = (await parent.call('GET', '/ca/certificate')).body as string;
    const none = await connect(url, { ca });
    expect(none).toEqual({ refused: 403 });
    const dir = await tempDir('outpost-stranger-');
    try {
      const { authority } = await Authority.open(dir, 86_400_000);
      const stranger = await issueLinkCert(authority);
      expect(await connect(url, { ca, cert: stranger.certPem, key: stranger.keyPem })).toEqual({ refused: 403 });
    } finally {
      await removeDir(dir);
    }
    const rogue = await rogueChild(parent, url);
    try {
      const c = await connect(url, rogue);
      if (!('ws' in c)) throw new Error('a joined child was refused');
      const closed = new Promise<void>((r) => c.ws.once('close', () => r()));
      expect((await parent.call('DELETE', `/hierarchy/children/${rogue.id}`)).status).toBe(204);
      await closed;
      expect(await connect(url, rogue)).toEqual({ refused: 403 });
    } finally {
      await removeDir(rogue.dir);
    }
    // The honest child is unaffected.
    await join(child, url, token);
    await waitFor(async () => (await child.call('GET', '/hierarchy')).body.parent?.state === 'ok', { timeoutMs: 5_000, what: 'the honest link' });
  });
});

/** A GET on the link listener, with a client certificate or none. */
function linkGet(url: string, path: string, tls: { ca: string; cert?: string; key?: string }, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { ...tls, headers, checkServerIdentity: () => undefined }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe("hierarchy: the link listener's package routes", () => {
  it('answer a child only: its package servers for a package enabled here (GET /sources), its content from a byte on (GET /content with Range)', async () => {
    const parent = await startCore({ config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const content = Buffer.from('0123456789'.repeat(100));
    const sha256 = createHash('sha256').update(content).digest('hex');
    const pkg = await parent.call('POST', '/packages', { body: { name: 'tool', version: '1', files: [{ path: 'tool.bin', size: content.length, sha256 }] } });
    expect((await parent.call('PUT', `/packages/${pkg.body.id}/files/tool.bin`, { raw: content, headers: { 'content-type': 'application/octet-stream' } })).status).toBe(200);
    const ca = (await parent.call('GET', '/ca/certificate')).body as string;
    // Nobody but a child: no certificate, or one of a CA that never joined.
    expect((await linkGet(url, `/sources/${pkg.body.id}`, { ca })).status).toBe(403);
    expect((await linkGet(url, `/content/${sha256}`, { ca })).status).toBe(403);
    const dir = await tempDir('outpost-stranger-');
    try {
      const { authority } = await Authority.open(dir, 86_400_000);
      const stranger = await issueLinkCert(authority);
      expect((await linkGet(url, `/sources/${pkg.body.id}`, { ca, cert: stranger.certPem, key: stranger.keyPem })).status).toBe(403);
    } finally {
      await removeDir(dir);
    }
    const child = await rogueChild(parent, url);
    try {
      const tls = { ca, cert: child.cert, key: child.key };
      // Not enabled here: no sources offered (the child fetches the content itself).
      expect((await linkGet(url, `/sources/${pkg.body.id}`, tls)).status).toBe(404);
      expect((await parent.call('POST', `/packages/${pkg.body.id}/enable`, { body: {} })).status).toBe(200);
      const offer = await linkGet(url, `/sources/${pkg.body.id}`, tls);
      expect(offer.status).toBe(200);
      expect(JSON.parse(offer.body.toString())).toEqual({ id: pkg.body.id, manifestHash: pkg.body.manifestHash, sources: [], staging: 0 });
      for (const bad of ['/sources/pk_nope', '/sources/x', `/sources/${pkg.body.id}/..`]) expect((await linkGet(url, bad, tls)).status, bad).toBe(404);
      // Content, whole or from a byte on; any other Range is refused.
      const whole = await linkGet(url, `/content/${sha256}`, tls);
      expect(whole.status).toBe(200);
      expect(whole.body.equals(content)).toBe(true);
      const rest = await linkGet(url, `/content/${sha256}`, tls, { range: 'bytes=990-' });
      expect(rest.status).toBe(206);
      expect(rest.headers['content-range']).toBe(`bytes 990-999/1000`);
      expect(rest.body.equals(content.subarray(990))).toBe(true);
      expect((await linkGet(url, `/content/${sha256}`, tls, { range: 'bytes=1000-' })).body.length).toBe(0);
      for (const range of ['bytes=0-10', 'bytes=1001-', 'items=1-', 'bytes=-5']) expect((await linkGet(url, `/content/${sha256}`, tls, { range })).status, range).toBe(416);
    } finally {
      await removeDir(child.dir);
    }
  });
});

describe("hierarchy: a core's install files stay its own", () => {
  it("the parent's install package never comes down; a child's own (same files, same id) stays its own", async () => {
    const dir = joinPath(await newDataDir(), 'artifacts');
    await mkdir(dir);
    await writeFile(joinPath(dir, 'outpost-agent-linux-x64'), '#!/bin/sh\nexit 0\n');
    const { parent, child, token, url } = await parentAndChild({ install: { dir } });
    for (const c of [parent, child]) expect((await c.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.9.0.0/16'] } })).status).toBe(201);
    const own = await child.call('POST', '/install/stage', { body: { site: 'branch' } });
    expect(own.status).toBe(200);
    await join(child, url, token);
    const theirs = await parent.call('POST', '/install/stage', { body: { site: 'branch' } });
    expect(theirs.body.package.id).toBe(own.body.package.id);
    // Replicated after it: once the task is down, the install package would be too.
    expect((await parent.call('POST', '/tasks', { body: task })).status).toBe(201);
    await waitFor(async () => (await child.call('GET', '/tasks/hello')).status === 200, { timeoutMs: 5_000, what: 'the task on the child' });
    expect((await parent.call('DELETE', `/packages/${theirs.body.package.id}`)).status).toBe(200);
    expect((await parent.call('PUT', '/tasks/hello', { body: { ...task, args: ['v2'] } })).status).toBe(200);
    await waitFor(async () => (await child.call('GET', '/tasks/hello')).body.args?.[0] === 'v2', { timeoutMs: 5_000, what: 'the change on the child' });
    const pkgs = (await child.call('GET', '/packages')).body.items as Array<{ id: string }>;
    expect(pkgs.map((p) => p.id)).toEqual([own.body.package.id]);
    expect((await child.call('GET', '/hierarchy')).body.parent.replaced).toBe(0);
    expect((await child.call('DELETE', `/packages/${own.body.package.id}`)).status).toBe(200);
  });
});

describe('hierarchy: polling a run', () => {
  it('answers counts only with ?agents=false, from memory as results come up, and again after a restart', async () => {
    const parent = await startCore({ config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    expect((await parent.call('POST', '/tasks', { body: task })).status).toBe(201);
    expect((await parent.call('POST', '/jobs', { body: job })).status).toBe(201);
    const run = await parent.call('POST', '/hierarchy/runs', { body: { job: 'greet', all: true } });
    expect(run.status).toBe(201);
    const id = run.body.id as string;
    // A child speaking the protocol itself sends its agents' results up, a page at a time.
    const child = await rogueChild(parent, url);
    try {
      const c = await connect(url, child);
      if (!('ws' in c)) throw new Error(`child refused: ${c.refused}`);
      c.ws.send(JSON.stringify({ t: 'hello', down: 0, name: 'child' }));
      await waitFor(() => c.messages.some((m) => m.t === 'welcome'), { timeoutMs: 3_000, what: 'welcome' });
      let seq = 0;
      const up = async (states: string[]): Promise<void> => {
        const entries = states.map((state, i) => ({ s: ++seq, o: [{ k: `!hier-results!${id}!${child.id}!ag_${i}`, v: JSON.stringify({ core: child.id, agent: `ag_${i}`, state, at: 1 }) }] }));
        c.ws.send(JSON.stringify({ t: 'up', to: seq, entries }));
        await waitFor(() => c.messages.some((m) => m.t === 'ack' && m.up === seq), { timeoutMs: 3_000, what: `ack ${seq}` });
      };
      const countsOnly = async () => {
        const r = await parent.call('GET', `/hierarchy/runs/${id}?agents=false`);
        expect(r.status).toBe(200);
        expect(r.body).not.toHaveProperty('agents');
        expect(r.body.run.id).toBe(id);
        return { counts: r.body.counts, cores: r.body.cores };
      };
      await up(['running', 'running', 'running']);
      await waitFor(async () => (await countsOnly()).counts.running === 3, { timeoutMs: 3_000, what: 'three running' });
      await up(['succeeded', 'failed', 'running']);
      await waitFor(async () => (await countsOnly()).counts.succeeded === 1, { timeoutMs: 3_000, what: 'one succeeded' });
      expect(await countsOnly()).toEqual({ counts: { succeeded: 1, failed: 1, running: 1 }, cores: { [child.id]: 3 } });
      // The full view (the default) agrees and lists every agent.
      const full = await parent.call('GET', `/hierarchy/runs/${id}`);
      expect(full.body.counts).toEqual({ succeeded: 1, failed: 1, running: 1 });
      expect(full.body.agents).toHaveLength(3);
      c.ws.close();
    } finally {
      await removeDir(child.dir);
    }
    // The query is validated.
    for (const bad of ['agents=no', 'agents=false&x=1']) {
      const r = await parent.call('GET', `/hierarchy/runs/${id}?${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toBe('COMMON_VALIDATION');
    }
    expect((await parent.call('GET', '/hierarchy/runs/hr_nope?agents=false')).body.error.code).toBe('CORE_HIERARCHY_RUN_NOT_FOUND');
    // Rebuilt from the store when the core starts again.
    await parent.stop();
    const again = await startCore({ dir: parent.dir, config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST } } });
    const r = await again.call('GET', `/hierarchy/runs/${id}?agents=false`);
    expect(r.body.counts).toEqual({ succeeded: 1, failed: 1, running: 1 });
  });
});
