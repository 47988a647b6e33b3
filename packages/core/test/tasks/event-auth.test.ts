import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPublicKey } from 'node:crypto';
import { cancelBody, runBody, runDigest, verifyTicket, verifyWork, workTicketKey, datagramKey, parseCredential, withMac } from '@outpost/common';
import { grantFor } from '@outpost/testing';
import { enrollFleet, startCore, type Harness } from './harness.js';

type Json = Record<string, unknown>;
let h: Harness;
beforeEach(async () => {
  h = await startCore();
});
afterEach(async () => {
  await h.close();
});

const ev = (run: string, agent: string, step: number, state: string, extra: Json = {}) => ({ id: `${run}:${agent}:${step}:0:${state}`, run, agent, step, attempt: 0, state, at: Date.now(), ...extra });

/** A site server granted the task service. */
async function enrollTaskServer(name: string): Promise<{ id: string; bearer: string }> {
  const t = await h.core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: { url: 'http://127.0.0.1:2' } }) });
  const res = await fetch(`${h.core.url}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: t.token, name, services: { task: { url: 'http://127.0.0.1:2' } } }),
  });
  const ss = (await res.json()) as { id: string; credential: string };
  return { id: ss.id, bearer: ss.credential };
}

describe('signed work and authenticated results', () => {
  it('hands out runs signed with the key agents pin at enrollment, with a ticket only the agent can check, and signs a cancel', async () => {
    await h.admin('POST', '/tasks', { name: 't', kind: 'command', program: 'true' });
    await h.admin('POST', '/jobs', { name: 'j', steps: [{ task: 't' }] });
    const t = await h.core.createEnrollmentToken({ for: 'agent' });
    const ts = await enrollTaskServer('ts-sig');
    const enrolled = (await (await fetch(`${h.core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t.token, name: 'pc' }) })).json()) as { id: string; credential: string; workKey: string };
    await h.core.registry.settled();
    const key = createPublicKey({ key: Buffer.from(enrolled.workKey, 'base64'), format: 'der', type: 'spki' });
    const wk = await h.as<{ workKey: string }>(enrolled.credential, 'GET', `/agents/${enrolled.id}/work-key`);
    expect(wk.body.workKey).toBe(enrolled.workKey);
    expect((await h.as(enrolled.credential, 'GET', '/agents/ag_other/work-key')).body).toMatchObject({ error: { code: 'CORE_TASK_NOT_YOU' } });
    const run = await h.admin<{ id: string }>('POST', '/jobs/j/runs', { agents: [enrolled.id] });
    const page = await h.as<{ runs: Array<Json & { id: string; job: string; steps: unknown; expiresAt: number; nonce: string; sig: string; agents: string[]; tickets: string[] }> }>(ts.bearer, 'GET', '/task-service/pending');
    const r = page.body.runs.find((x) => x.id === run.body.id)!;
    const body = runBody({ run: r.id, job: r.job, steps: r.steps, expiresAt: r.expiresAt, nonce: r.nonce })!;
    expect(verifyWork(key, body, r.sig)).toBe(true);
    expect(r.agents).toEqual([enrolled.id]);
    const tk = workTicketKey(datagramKey(parseCredential(enrolled.credential)!.secret));
    expect(verifyTicket(tk, runDigest(body), enrolled.id, r.tickets[0])).toBe(true);
    await h.admin('POST', `/runs/${run.body.id}/cancel`);
    const after = await h.as<{ runs: Array<{ id: string; cancelSig?: string }> }>(ts.bearer, 'GET', '/task-service/pending?since=0');
    // A finished (cancelled) run is listed only to task servers asking for changes since a seq.
    const changed = after.body.runs.find((x) => x.id === run.body.id) ?? (await h.as<{ runs: Array<{ id: string; cancelSig?: string }> }>(ts.bearer, 'GET', '/task-service/pending?since=1')).body.runs.find((x) => x.id === run.body.id)!;
    expect(verifyWork(key, cancelBody(run.body.id), changed.cancelSig)).toBe(true);
  });

  it('refuses, counts and does not apply events with a forged or missing MAC, or from a task server the agent run was not dispatched through', async () => {
    await h.admin('POST', '/tasks', { name: 't', kind: 'command', program: 'true' });
    await h.admin('POST', '/jobs', { name: 'j', steps: [{ task: 't' }] });
    const { ts, agents } = await enrollFleet(h, 1);
    const a = agents[0]!;
    const other = await enrollTaskServer('ts-other');
    await h.core.registry.settled();
    // Whichever the balancer chose, `mine` serves the agent and `stranger` never did.
    const assigned = h.core.registry.store.agents.get(a.id)!.taskServer;
    const [mine, stranger] = assigned === ts.id ? [ts, other] : [other, ts];
    const run = await h.admin<{ id: string }>('POST', '/jobs/j/runs', { all: true });
    const id = run.body.id;
    await h.as(mine.bearer, 'GET', '/task-service/pending');

    const forged = { ...ev(id, a.id, 0, 'succeeded', { exitCode: 0, output: 'owned\n' }), mac: 'A'.repeat(43) };
    const bare = ev(id, a.id, -1, 'succeeded');
    const altered = { ...withMac(a.eventKey, ev(id, a.id, 0, 'succeeded', { exitCode: 0, output: 'fine\n' })), output: 'owned\n' };
    const res = await h.as(mine.bearer, 'POST', '/task-service/events', { events: [forged, bare, altered] });
    expect(res.body).toEqual({ accepted: 0, duplicates: 0, unknown: 0, refused: 3 });
    // A genuine, MAC'd event relayed by a task server the agent's run never went through.
    const genuine = withMac(a.eventKey, ev(id, a.id, -1, 'succeeded'));
    expect((await h.as(stranger.bearer, 'POST', '/task-service/events', { events: [genuine, ev(id, a.id, -1, 'tickled')] })).body).toMatchObject({ refused: 2 });

    const show = await h.admin<{ state: string; steps: Array<{ state: string; output?: string }> }>('GET', `/runs/${id}/agents/${a.id}`);
    expect(show.body.state).toBe('queued');
    expect(show.body.steps.every((s) => s.output === undefined)).toBe(true);
    const stats = await h.admin<{ tasks: { refused: number; refusedBy: Json; applied: number } }>('GET', '/stats');
    expect(stats.body.tasks).toMatchObject({ refused: 5, refusedBy: { 'bad-mac': 2, 'no-mac': 1, 'wrong-task-server': 2 }, applied: 0 });

    // The agent's own, through its task server: applied.
    expect((await h.as(mine.bearer, 'POST', '/task-service/events', { events: [genuine] })).body).toMatchObject({ accepted: 1, refused: 0 });
    expect((await h.admin<{ state: string }>('GET', `/runs/${id}/agents/${a.id}`)).body.state).toBe('succeeded');
  });
});
