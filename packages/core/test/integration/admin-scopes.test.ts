import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, enrollAgent, startCore, type Enrolled, type TestCore } from './harness.js';

/*
 * Site scopes against agents of two sites: `bea` (operator, scoped to branch) sees and
 * acts only on branch; what lies outside answers exactly like something that does not
 * exist.
 */
let tc: TestCore;
let bea: string;
const hq: Enrolled[] = [];
const branch: Enrolled[] = [];
let hqRun: string;
let mixedRun: string;

beforeAll(async () => {
  tc = await startCore();
  await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
  await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.2.0.0/16'] } });
  for (let i = 0; i < 3; i++) hq.push(await enrollAgent(tc, `hq-${i}`, { ips: [`10.1.0.${10 + i}`] }));
  for (let i = 0; i < 2; i++) branch.push(await enrollAgent(tc, `br-${i}`, { ips: [`10.2.0.${10 + i}`] }));
  await tc.call('POST', '/tasks', { body: { name: 'hello', kind: 'command', program: '/bin/true' } });
  await tc.call('POST', '/jobs', { body: { name: 'hello', steps: [{ task: 'hello' }] } });
  hqRun = (await tc.call('POST', '/jobs/hello/runs', { body: { site: 'hq' } })).body.id;
  mixedRun = (await tc.call('POST', '/jobs/hello/runs', { body: { all: true } })).body.id;
  const r = await tc.call('POST', '/admins', { body: { name: 'bea', roles: ['operator'], sites: ['branch'] } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  bea = r.body.token.token;
});
afterAll(cleanup);

const as = (method: string, path: string, body?: unknown) => tc.call(method, path, { token: bea, ...(body === undefined ? {} : { body }) });

describe('a site-scoped administrator', () => {
  it('lists only the agents, sites and site servers of its scope', async () => {
    const agents = (await as('GET', '/agents')).body.items.map((a: { name: string }) => a.name).sort();
    expect(agents).toEqual(['br-0', 'br-1']);
    expect((await as('GET', '/sites')).body.items.map((s: { name: string }) => s.name)).toEqual(['branch']);
    // The owner sees all five.
    expect((await tc.call('GET', '/agents')).body.items).toHaveLength(5);
  });

  it('gets 404 for an out-of-scope agent or site, exactly as for one that does not exist', async () => {
    const out = await as('GET', `/agents/${hq[0]!.id}`);
    const missing = await as('GET', '/agents/ag_doesnotexist');
    expect(out.status).toBe(404);
    expect(out.body.error.code).toBe(missing.body.error.code);
    expect(out.body.error.message.replace(hq[0]!.id, 'X')).toBe(missing.body.error.message.replace('ag_doesnotexist', 'X'));
    expect((await as('GET', '/sites/hq')).status).toBe(404);
    expect((await as('GET', `/agents/${branch[0]!.id}`)).status).toBe(200);
  });

  it('runs a job only on agents inside the scope', async () => {
    // Naming an hq agent: unknown to it, and no run is made.
    const before = (await tc.call('GET', '/runs')).body.items.length;
    const named = await as('POST', '/jobs/hello/runs', { agents: [branch[0]!.id, hq[0]!.id] });
    expect(named.status).toBe(404);
    expect(named.body.error.code).toBe('CORE_TASK_UNKNOWN_AGENTS');
    expect((await tc.call('GET', '/runs')).body.items.length).toBe(before);
    expect((await as('POST', '/jobs/hello/runs', { site: 'hq' })).status).toBe(404);
    // No target named: every agent of its scope, and only those.
    const all = await as('POST', '/jobs/hello/runs', { all: true });
    expect(all.status, JSON.stringify(all.body)).toBe(201);
    expect(all.body.agents).toBe(2);
    const targets = (await tc.call('GET', `/runs/${all.body.id}/agents`)).body.items.map((x: { agent: string }) => x.agent).sort();
    expect(targets).toEqual(branch.map((b) => b.id).sort());
  });

  it('sees runs of its sites only, and only its agents in them; cannot cancel a run that reaches beyond its scope', async () => {
    const runs = (await as('GET', '/runs')).body.items.map((r: { id: string }) => r.id);
    expect(runs).not.toContain(hqRun);
    expect(runs).toContain(mixedRun);
    expect((await as('GET', `/runs/${hqRun}`)).status).toBe(404);
    const rows = (await as('GET', `/runs/${mixedRun}/agents`)).body.items.map((x: { agent: string }) => x.agent).sort();
    expect(rows).toEqual(branch.map((b) => b.id).sort());
    expect((await as('GET', `/runs/${mixedRun}/agents/${hq[0]!.id}`)).status).toBe(404);
    const cancel = await as('POST', `/runs/${mixedRun}/cancel`);
    expect(cancel.status).toBe(403);
    expect(cancel.body.error.code).toBe('CORE_FORBIDDEN');
    expect((await tc.call('GET', `/runs/${mixedRun}`)).body.state).not.toBe('cancelled');
    expect((await as('POST', `/runs/${hqRun}/cancel`)).status).toBe(404);
  });

  it('cannot add a site or widen anything beyond its scope', async () => {
    const scopedAdmin = await tc.call('POST', '/admins', { body: { name: 'sam', roles: ['admin'], sites: ['branch'] } });
    const sam = scopedAdmin.body.token.token as string;
    const add = await tc.call('POST', '/sites', { token: sam, body: { name: 'x', subnets: ['10.9.0.0/16'] } });
    expect(add.status).toBe(403);
    expect(add.body.error.details.permission).toBe('sites.write');
    expect((await tc.call('GET', '/sites/x')).status).toBe(404);
    const tok = await tc.call('POST', '/tokens', { token: sam, body: { for: 'site-server', grant: { services: { task: true }, sites: ['hq'] } } });
    expect(tok.status).toBe(403);
    expect((await tc.call('PATCH', '/sites/hq', { token: sam, body: { description: 'mine now' } })).status).toBe(404);
    expect((await tc.call('GET', '/sites/hq')).body.description).toBeUndefined();
  });

  it('sees its own sites in the console snapshot, not the totals of the core', async () => {
    const snap = (await as('GET', '/console/snapshot')).body;
    expect(snap.agents.total).toBe(2);
    expect(snap.sites).toBe(1);
    expect(snap.runs.items.map((r: { id: string }) => r.id)).not.toContain(hqRun);
    expect((await tc.call('GET', '/console/snapshot')).body.agents.total).toBe(5);
  });
});
