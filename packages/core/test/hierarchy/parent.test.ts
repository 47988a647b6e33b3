// The parent side of a link as a hostile world sees it: a join token is one child's, however
// many joins race for it (a leaked token replayed at once from several machines).
import { Agent, request } from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { removeDir } from '@outpost/testing';
import { Authority } from '../../src/ca/authority.js';
import { issueLinkCert } from '../../src/hierarchy/tls.js';
import { cleanup, newDataDir, startCore } from '../integration/harness.js';
import { FAST } from '../integration/hierarchy-helpers.js';

/** One request over `agent` (kept-alive TLS connections, so racing requests are not spread out by their handshakes). */
function send(agent: Agent, url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { agent, method, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

afterEach(cleanup);

describe('joining a parent', () => {
  it('one token, one child: of 6 cores joining with it at once, exactly one is taken', async () => {
    const parent = await startCore({ config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const ca = (await parent.call('GET', '/ca/certificate')).body as string;
    const token = ((await parent.call('POST', '/hierarchy/tokens', { body: {} })).body.token as string).split('.').slice(0, 2).join('.');
    const cores = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const dir = await newDataDir();
        const { authority } = await Authority.open(dir, 86_400_000);
        const link = await issueLinkCert(authority);
        return { i, dir, body: { token, id: authority.coreId, name: `rogue-${i}`, caPem: authority.certPem, certPem: link.certPem } };
      }),
    );
    // Six connections, each through its TLS handshake first; then the six joins at once.
    const agent = new Agent({ keepAlive: true, maxSockets: 6, ca, checkServerIdentity: () => undefined });
    const warm = await Promise.all(cores.map(() => send(agent, url, 'GET', '/no-such-route')));
    expect(warm.every((w) => w.status === 404)).toBe(true);
    const answers = await Promise.all(cores.map((c) => send(agent, url, 'POST', '/join', c.body)));
    agent.destroy();
    expect(answers.map((a) => a.status).sort()).toEqual([200, 401, 401, 401, 401, 401]);
    expect(answers.filter((a) => a.status === 401).every((a) => a.body.error.code === 'CORE_HIERARCHY_TOKEN_USED')).toBe(true);
    const children = (await parent.call('GET', '/hierarchy')).body.children as Array<{ name: string }>;
    expect(children).toHaveLength(1);
    expect(children[0]!.name).toBe(cores[answers.findIndex((a) => a.status === 200)]!.body.name);
    for (const c of cores) await removeDir(c.dir);
  });
});
