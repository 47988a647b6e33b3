// Two cores on one PostgreSQL table are one child of a parent: the child's side of the
// hierarchy (the link, summaries and results up, content from the parent) runs on the
// holder of the `hierarchy.child` lease, and passes to the other core when the holder stops.
// Without the lease both cores link to the parent and each new link replaces the other's.
import { describe, expect, it } from 'vitest';
import { waitFor } from '@outpost/testing';
import { createToken, enrollAgent, newDataDir, postgresForFile, startCore, type TestCore } from './harness.js';
import { FAST, join, realClock, task, taskNames } from './hierarchy-helpers.js';

const tasksOf = (tc: TestCore): Promise<string[]> => taskNames((method, path, body) => tc.call(method, path, body === undefined ? {} : { body }));

const { gate, pg } = postgresForFile('a child of two cores on one PostgreSQL');

type Parent = { id: string; connected: boolean; links: number; upApplied: number };
const childAt = async (parent: TestCore): Promise<Parent | undefined> => ((await parent.call('GET', '/hierarchy')).body.children as Parent[])[0];
const here = async (tc: TestCore): Promise<boolean> => (await tc.call('GET', '/hierarchy')).body.parent?.here === true;

describe.runIf(gate.run)('a child of two cores on one PostgreSQL table', () => {
  it('links to its parent from one core at a time (the hierarchy.child lease); the other core takes the link over when the holder stops', async () => {
    const parent = await startCore({ clock: realClock(), config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST } } });
    const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
    const store = { kind: 'postgres' as const, url: pg().url, table: 'hier_two_cores' };
    const cfg = { store, hierarchy: { name: 'emea', ...FAST } };
    const a = await startCore({ clock: realClock(), config: cfg });
    const b = await startCore({ clock: realClock(), dir: await newDataDir(), config: cfg });
    const holds = async (tc: TestCore): Promise<boolean> => ((await tc.call('GET', '/health', { token: null })).body.leases.held as string[]).includes('hierarchy.child');
    await waitFor(async () => (await holds(a)) !== (await holds(b)), { timeoutMs: 10_000, what: 'one core holding the hierarchy.child lease' });
    const [holder, other] = (await holds(a)) ? [a, b] : [b, a];

    // Joined through the core that does not hold the link: the holder links.
    const t = await parent.call('POST', '/hierarchy/tokens', { body: {} });
    await join(other, url, t.body.token);
    await waitFor(async () => (await childAt(parent))?.connected === true, { timeoutMs: 10_000, what: 'the child linked' });
    await waitFor(async () => (await here(holder)) && !(await here(other)), { timeoutMs: 5_000, what: 'the holder showing the link here' });

    // One link for seconds, not two cores replacing each other's.
    const links = (await childAt(parent))!.links;
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await childAt(parent))!.links, 'links opened by the child while both cores ran').toBe(links);
    expect(links).toBe(1);

    // What only the holder can do is refused on the other, with a code.
    const refused = await other.call('POST', '/hierarchy/leave', { body: {} });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('CORE_HIERARCHY_LINK_ELSEWHERE');

    // Down and up work through the holder, whichever core the change was made on.
    expect((await parent.call('POST', '/tasks', { body: task('from-hq') })).status).toBe(201);
    for (const tc of [holder, other]) await waitFor(async () => (await tasksOf(tc)).includes('from-hq'), { timeoutMs: 5_000, what: 'the parent task on each core' });
    // The parent's item is read-only on the core that did not apply it too.
    const edit = await other.call('PUT', '/tasks/from-hq', { body: { ...task('from-hq'), args: ['changed'] } });
    expect(edit.body?.error?.code, JSON.stringify(edit.body)).toBe('CORE_HIERARCHY_READ_ONLY');
    const childId = (await childAt(parent))!.id;
    const agent = await enrollAgent(other, 'pc-other', {}, await createToken(other, 'agent'));
    await waitFor(async () => ((await parent.call('GET', `/hierarchy/agents?core=${childId}`)).body.items as Array<{ id: string }>).some((x) => x.id === agent.id), { timeoutMs: 10_000, what: "the other core's agent summarised at the parent" });

    // The holder stops: the other takes the lease and the link over, and changes flow again.
    await holder.stop();
    await waitFor(async () => (await here(other)) && (await childAt(parent))?.connected === true, { timeoutMs: 15_000, what: 'the other core linked' });
    expect((await childAt(parent))!.links).toBe(2);
    expect((await parent.call('POST', '/tasks', { body: task('after-takeover') })).status).toBe(201);
    await waitFor(async () => (await tasksOf(other)).includes('after-takeover'), { timeoutMs: 10_000, what: 'a task made after the takeover on the child' });
  });
});
