import { describe, expect, it } from 'vitest';
import { expectErrorsDocumented } from '@outpost/testing';
import { PackageErrors } from '../../src/packages/errors.js';
import { pathProblem } from '../../src/packages/manifest.js';
import type { ServerStatusRecord } from '../../src/packages/model.js';
import { nextReleases, planTargets, sourcesFor, type PackageServerInfo } from '../../src/packages/staging.js';

const ps = (id: string, constrained: boolean, sites: string[]): PackageServerInfo => ({ id, name: id, constrained, url: `http://${id}`, sites, online: true });
const servers = [ps('hq', false, ['hq']), ps('bu', false, ['branch']), ps('bc', true, ['branch']), ps('bc2', true, ['branch'])];
const byId = new Map(servers.map((s) => [s.id, s]));
const st = (serverId: string, state: ServerStatusRecord['state'], released = true): [string, ServerStatusRecord] => [
  serverId,
  { packageId: 'p', serverId, released, state, bytesDone: 0, bytesTotal: 1, updatedAt: 0 },
];

describe('staging plan', () => {
  it('orders all servers unconstrained first and refuses constrained servers without a feeder', () => {
    expect(planTargets(servers, {}).targets).toEqual(['bu', 'hq', 'bc', 'bc2']);
    expect(() => planTargets([ps('x', true, ['lonely'])], {})).toThrow(/lonely/);
    const plan = planTargets(servers, { servers: ['bc'] });
    expect(plan.targets).toEqual(['bu', 'bc']);
    expect(plan.warnings[0]).toMatch(/bu/);
  });

  it('releases at most maxServers at once, in order, and holds constrained servers until their site has a ready server', () => {
    const targets = ['bu', 'hq', 'bc', 'bc2'];
    expect(nextReleases(targets, new Map(), byId, 1)).toEqual(['bu']);
    expect(nextReleases(targets, new Map([st('bu', 'downloading')]), byId, 1)).toEqual([]);
    expect(nextReleases(targets, new Map([st('bu', 'downloading')]), byId, 2)).toEqual(['hq']);
    expect(nextReleases(targets, new Map([st('bu', 'ready'), st('hq', 'ready')]), byId, 1)).toEqual(['bc']);
    expect(nextReleases(targets, new Map([st('bu', 'ready'), st('hq', 'ready')]), byId, 0)).toEqual(['bc', 'bc2']);
  });

  it('gives a constrained server only in-site codebases, and an unconstrained one the core too', () => {
    const status = new Map([st('bu', 'ready'), st('hq', 'ready')]);
    const targets = ['bu', 'hq', 'bc'];
    expect(sourcesFor(byId.get('bc')!, 'p', targets, status, byId, 'http://core').map((s) => s.url)).toEqual(['http://bu/packages/p']);
    expect(sourcesFor(byId.get('hq')!, 'p', targets, status, byId, 'http://core').map((s) => s.url)).toEqual(['http://core', 'http://bu/packages/p']);
    expect(sourcesFor(byId.get('bc')!, 'p', targets, new Map([st('hq', 'ready')]), byId, 'http://core')).toEqual([]);
    // A package from upstream: the parent's codebases go to unconstrained servers only, after those in their sites and
    // ahead of the core; without the core's URL (it does not hold the content) the core is left out.
    const up = [{ url: 'http://parent-ps/packages/p', kind: 'codebase' as const, serverId: 'pps', inSite: false }];
    expect(sourcesFor(byId.get('hq')!, 'p', targets, status, byId, 'http://core', up).map((s) => s.url)).toEqual(['http://parent-ps/packages/p', 'http://core', 'http://bu/packages/p']);
    expect(sourcesFor(byId.get('hq')!, 'p', targets, status, byId, undefined, up).map((s) => s.url)).toEqual(['http://parent-ps/packages/p', 'http://bu/packages/p']);
    expect(sourcesFor(byId.get('bc')!, 'p', targets, status, byId, undefined, up).map((s) => s.url)).toEqual(['http://bu/packages/p']);
  });

  it('refuses unsafe package paths', () => {
    for (const p of ['..', 'a/..', '/abs', 'a//b', 'C:/x', 'a\\b', '', './x']) expect(pathProblem(p), p).toBeDefined();
    expect(pathProblem('bin/tool v2.exe')).toBeUndefined();
  });

  it('documents every packages error code', async () => {
    await expectErrorsDocumented(new URL('../../src/packages/README.md', import.meta.url).pathname, Object.values(PackageErrors));
  });
});
