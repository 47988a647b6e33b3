// The hierarchy link protocol at its edges, against a real core: a raw link (a rogue child
// with a certificate of the parent's CA) or a fake parent speaking the protocol itself.
// Reconnections (cursors, overlaps), pipelined pages (window, gaps, complete copies) and
// what a page may and may not change.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:https';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { Authority, certificateFingerprint } from '../../src/ca/authority.js';
import { issueLinkCert } from '../../src/hierarchy/tls.js';
import { cleanup, createToken, enrollAgent, startCore, type TestCore } from './harness.js';
import { connect, FAST, join, rogueChild, task, taskNames } from './hierarchy-helpers.js';

afterEach(async () => {
  await cleanup();
});

/** A parent core with a link listener on 127.0.0.1 (`hierarchy`: more of its config) and the listener's URL. */
async function listeningParent(hierarchy: Record<string, unknown> = {}): Promise<{ parent: TestCore; url: string }> {
  const parent = await startCore({ config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...FAST, ...hierarchy } } });
  return { parent, url: (await parent.call('GET', '/hierarchy')).body.listener as string };
}

/** A link of `rogue` to the listener at `url`, open (a refusal throws). */
async function openLink(url: string, rogue: { cert: string; key: string; ca: string }): Promise<{ ws: WebSocket; messages: any[] }> {
  const c = await connect(url, rogue);
  if (!('ws' in c)) throw new Error(`refused: ${c.refused}`);
  return c;
}

/** An up entry at seq `s`: the summary of agent `id` of core `core`. */
const upAgent = (core: string, s: number, id: string, name: string) => ({ s, o: [{ k: `!hier-up!${core}!agent!${id}`, v: JSON.stringify({ core, kind: 'agent', id, name, macs: [] }) }] });

describe('hierarchy protocol: at a reconnection', () => {
  it('the parent sends nothing down before the hello, then only entries after the cursor the hello gives', async () => {
    const { parent, url } = await listeningParent();
    const rogue = await rogueChild(parent, url);
    try {
      const c = await openLink(url, rogue);
      for (let i = 0; i < 3; i++) expect((await parent.call('POST', '/tasks', { body: task(`early-${i}`) })).status).toBe(201);
      // The parent's head, as its status shows it (lag of a child that acked nothing).
      const head = ((await parent.call('GET', '/hierarchy')).body.children as Array<{ id: string; lag: number }>).find((x) => x.id === rogue.id)!.lag;
      expect(head).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 300));
      expect(c.messages, 'messages before the hello').toEqual([]);
      c.ws.send(JSON.stringify({ t: 'hello', down: head, name: 'rogue' }));
      expect((await parent.call('POST', '/tasks', { body: task('late') })).status).toBe(201);
      await waitFor(() => c.messages.some((m) => m.t === 'down' && JSON.stringify(m).includes('late')), { timeoutMs: 5_000, what: 'the page with the new task' });
      const seqs = c.messages.filter((m) => m.t === 'down').flatMap((m) => (m.entries as Array<{ s: number }>).map((e) => e.s));
      expect(Math.min(...seqs)).toBeGreaterThan(head);
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it('the parent skips up entries it applied already (a page sent again after a reconnection overlaps)', async () => {
    const { parent, url } = await listeningParent();
    const rogue = await rogueChild(parent, url);
    const agent = (s: number, id: string, name: string) => upAgent(rogue.id, s, id, name);
    try {
      const c = await openLink(url, rogue);
      c.ws.send(JSON.stringify({ t: 'hello', down: 0, name: 'rogue' }));
      await waitFor(() => c.messages.some((m) => m.t === 'welcome'), { timeoutMs: 3_000, what: 'welcome' });
      c.ws.send(JSON.stringify({ t: 'up', to: 2, entries: [agent(1, 'ag_1', 'one'), agent(2, 'ag_2', 'two')] }));
      await waitFor(() => c.messages.some((m) => m.t === 'ack' && m.up === 2), { timeoutMs: 3_000, what: 'ack 2' });
      c.ws.send(JSON.stringify({ t: 'up', to: 3, entries: [agent(2, 'ag_2', 'stale'), agent(3, 'ag_3', 'three')] }));
      await waitFor(() => c.messages.some((m) => m.t === 'ack' && m.up === 3), { timeoutMs: 3_000, what: 'ack 3' });
      const items = (await parent.call('GET', `/hierarchy/agents?core=${rogue.id}`)).body.items as Array<{ id: string; name: string }>;
      expect(items.map((a) => [a.id, a.name]).sort()).toEqual([
        ['ag_1', 'one'],
        ['ag_2', 'two'],
        ['ag_3', 'three'],
      ]);
      expect(((await parent.call('GET', '/hierarchy')).body.children as Array<{ id: string; skipped: number }>).find((x) => x.id === rogue.id)!.skipped).toBe(1);
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it("the child skips down entries at or below its cursor, never moves it back, and says so in its next hello", async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST } } });
      const { link, hello } = await welcomed(fake, child);
      expect(hello).toMatchObject({ down: 0 });
      const def = (s: number, name: string, arg: string) => ({ s, o: [{ k: `!task-defs!${name}`, v: JSON.stringify({ ...task(name), args: [arg], timeoutMs: 60_000, createdAt: 1, updatedAt: 1 }) }] });
      link.send({ t: 'down', entries: [def(1, 'a', 'v1'), def(2, 'b', 'v1')], to: 2 });
      expect(await link.next('ack')).toMatchObject({ down: 2 });
      // Resent and overlapping pages: what was applied stays, what is new is taken.
      link.send({ t: 'down', entries: [def(2, 'b', 'stale'), def(3, 'c', 'v1')], to: 3 });
      expect(await link.next('ack')).toMatchObject({ down: 3 });
      link.send({ t: 'down', entries: [def(1, 'a', 'stale')], to: 1 });
      expect(await link.next('ack')).toMatchObject({ down: 3 });
      for (const name of ['a', 'b', 'c']) expect((await child.call('GET', `/tasks/${name}`)).body.args).toEqual(['v1']);
      expect((await child.call('GET', '/hierarchy')).body.parent).toMatchObject({ skipped: 2 });
      // The next link starts where the child is.
      link.ws.terminate();
      const again = await fake.link();
      expect(await again.next('hello')).toMatchObject({ down: 3 });
      again.ws.terminate();
    } finally {
      await fake.close();
    }
  });
});

describe('hierarchy protocol: one side restored from a backup (a cursor above the other side\'s journal)', () => {
  it('a parent behind its child sends a complete copy, and the changes after it reach the child', async () => {
    const { parent, url } = await listeningParent();
    const rogue = await rogueChild(parent, url);
    try {
      expect((await parent.call('POST', '/tasks', { body: task('before') })).status).toBe(201);
      const c = await openLink(url, rogue);
      const head = ((await parent.call('GET', '/hierarchy')).body.children as Array<{ id: string; lag: number }>).find((x) => x.id === rogue.id)!.lag;
      // At the head: nothing to send, no copy (past the wait a cursor above the head gets).
      c.ws.send(JSON.stringify({ t: 'hello', down: head, name: 'rogue' }));
      await new Promise((r) => setTimeout(r, 2_500));
      expect(c.messages.filter((m) => m.t === 'down' && m.snapshot)).toEqual([]);
      // Ahead of the parent's journal, as after the parent was restored from a backup.
      c.ws.send(JSON.stringify({ t: 'hello', down: head + 50, name: 'rogue' }));
      const copy = await waitFor(() => c.messages.find((m) => m.t === 'down' && m.snapshot && m.done), { timeoutMs: 6_000, what: 'a complete copy' });
      expect(copy.to).toBe(head);
      expect(JSON.stringify(c.messages.filter((m) => m.t === 'down' && m.snapshot))).toContain('!task-defs!before');
      c.ws.send(JSON.stringify({ t: 'ack', down: copy.to }));
      // New changes take seqs the child had seen before the restore: they still come down.
      expect((await parent.call('POST', '/tasks', { body: task('after') })).status).toBe(201);
      await waitFor(() => c.messages.some((m) => m.t === 'down' && !m.snapshot && JSON.stringify(m.entries).includes('!task-defs!after')), { timeoutMs: 5_000, what: "the new task's page" });
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it('a child behind what its parent applied sends a complete copy up', async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST } } });
      await enrollAgent(child, 'pc-1');
      await join(child, fake.url, fake.token);
      const link = await fake.link();
      await link.next('hello');
      // The parent applied far more of this core than its journal holds (the child restored from a backup).
      link.send({ t: 'welcome', parent: fake.id, up: 1_000_000, editable: [] });
      const up = await waitFor(
        async () => {
          const m = await link.next('up');
          return m.snapshot ? m : undefined;
        },
        { timeoutMs: 10_000, what: 'a complete copy up' },
      );
      expect(up.to).toBeLessThan(1_000_000);
      expect(JSON.stringify(up.entries)).toContain('pc-1');
      link.ws.terminate();
    } finally {
      await fake.close();
    }
  });

  it("the parent applies a child's complete copy as a replacement: its items not in the copy go, and the copy's cursor stands even when lower", async () => {
    const { parent, url } = await listeningParent();
    const rogue = await rogueChild(parent, url);
    const agent = (s: number, id: string, name: string) => upAgent(rogue.id, s, id, name);
    const names = async () => ((await parent.call('GET', `/hierarchy/agents?core=${rogue.id}`)).body.items as Array<{ id: string; name: string }>).map((a) => [a.id, a.name]).sort();
    try {
      const c = await openLink(url, rogue);
      c.ws.send(JSON.stringify({ t: 'hello', down: 0, name: 'rogue' }));
      await waitFor(() => c.messages.some((m) => m.t === 'welcome'), { timeoutMs: 3_000, what: 'welcome' });
      c.ws.send(JSON.stringify({ t: 'up', to: 3, entries: [agent(1, 'ag_1', 'one'), agent(2, 'ag_2', 'two'), agent(3, 'ag_3', 'three')] }));
      await waitFor(() => c.messages.some((m) => m.t === 'ack' && m.up === 3), { timeoutMs: 3_000, what: 'ack 3' });
      // The restored child's copy as of its seq 2: ag_1 only.
      c.ws.send(JSON.stringify({ t: 'up', to: 2, snapshot: true, entries: [{ s: 2, o: agent(2, 'ag_1', 'one again').o }] }));
      await waitFor(() => c.messages.some((m) => m.t === 'ack' && m.up === 2), { timeoutMs: 3_000, what: 'ack 2 (the copy)' });
      expect(await names()).toEqual([['ag_1', 'one again']]);
      // The child goes on from its seq 2: not a gap, not skipped.
      c.ws.send(JSON.stringify({ t: 'up', from: 2, to: 3, entries: [agent(3, 'ag_4', 'four')] }));
      await waitFor(() => c.messages.filter((m) => m.t === 'ack' && m.up === 3).length === 2, { timeoutMs: 3_000, what: 'ack 3 after the copy' });
      expect(await names()).toEqual([
        ['ag_1', 'one again'],
        ['ag_4', 'four'],
      ]);
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });
});

/** Resolves to the close code of `ws` once it closes; rejects when it is still open after `ms`. */
function closedWithin(ws: WebSocket, ms: number, what: string): Promise<number> {
  return Promise.race([
    once(ws, 'close').then(([code]) => code as number),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} still open after ${ms} ms`)), ms).unref()),
  ]);
}

describe('hierarchy protocol: pipelined pages', () => {
  it('the parent keeps at most `window` pages in flight, each right after the one before, and after a reconnection with pages in flight sends again from the cursor the hello gives', async () => {
    const { parent, url } = await listeningParent({ batch: 2, window: 3 });
    const names = Array.from({ length: 12 }, (_, i) => `t${i}`);
    for (const name of names) expect((await parent.call('POST', '/tasks', { body: task(name) })).status).toBe(201);
    const rogue = await rogueChild(parent, url);
    try {
      const pages = (messages: any[]) => messages.filter((m) => m.t === 'down') as Array<{ from: number; to: number; entries: Array<{ s: number; o: Array<{ k: string }> }> }>;
      const first = await openLink(url, rogue);
      first.ws.send(JSON.stringify({ t: 'hello', down: 0, name: 'rogue' }));
      await waitFor(() => pages(first.messages).length >= 3, { timeoutMs: 5_000, what: 'three pages' });
      await new Promise((r) => setTimeout(r, 300));
      const sent = pages(first.messages);
      expect(sent, 'pages sent before any ack').toHaveLength(3);
      expect(sent.map((p) => p.from)).toEqual([0, sent[0]!.to, sent[1]!.to]);
      first.ws.send(JSON.stringify({ t: 'ack', down: sent[0]!.to }));
      await waitFor(() => pages(first.messages).length >= 4, { timeoutMs: 5_000, what: 'a fourth page after the first ack' });
      expect(pages(first.messages)[3]!.from).toBe(sent[2]!.to);
      // The link drops with three pages unacked; the next one says the child applied the first only.
      first.ws.close();
      const again = await openLink(url, rogue);
      again.ws.send(JSON.stringify({ t: 'hello', down: sent[0]!.to, name: 'rogue' }));
      const got = new Set<string>(sent[0]!.entries.flatMap((e) => e.o.map((op) => op.k)));
      let from = sent[0]!.to;
      for (let i = 0; i < 50; i++) {
        const page = await waitFor(() => pages(again.messages).find((p) => p.from === from), { timeoutMs: 5_000, what: `the page after ${from}` });
        expect(Math.min(...page.entries.map((e) => e.s), Infinity)).toBeGreaterThan(from);
        for (const e of page.entries) for (const op of e.o) got.add(op.k);
        again.ws.send(JSON.stringify({ t: 'ack', down: page.to }));
        from = page.to;
        if (names.every((n) => got.has(`!task-defs!${n}`))) break;
      }
      expect(names.filter((n) => !got.has(`!task-defs!${n}`))).toEqual([]);
      again.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it('the child keeps at most `window` up pages in flight, each right after the one before (pages with nothing to send up are not sent), and after a reconnection sends again from the welcome', async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST, batch: 1, window: 2 } } });
      await join(child, fake.url, fake.token);
      const link = await fake.link();
      const ups: Array<{ from: number; to: number; entries: Array<{ s: number }> }> = [];
      link.ws.on('message', (d: Buffer) => {
        const m = JSON.parse(d.toString());
        if (m.t === 'up') ups.push(m);
      });
      await link.next('hello');
      link.send({ t: 'welcome', parent: fake.id, up: 0, editable: [] });
      // Each enrollment changes the summaries: a write of them (one entry) at the next tick.
      for (let i = 0; i < 3; i++) {
        await enrollAgent(child, `pc-${i}`);
        await new Promise((r) => setTimeout(r, 400));
      }
      await waitFor(() => ups.length >= 2, { timeoutMs: 5_000, what: 'two up pages' });
      await new Promise((r) => setTimeout(r, 300));
      expect(ups, 'up pages before any ack').toHaveLength(2);
      expect(ups[0]!.from).toBe(0);
      expect(ups[1]!.from).toBe(ups[0]!.to);
      link.send({ t: 'ack', up: ups[0]!.to });
      await waitFor(() => ups.length >= 3, { timeoutMs: 5_000, what: 'a third up page after the first ack' });
      expect(ups[2]!.from).toBe(ups[1]!.to);
      // The link drops with two pages unacked: the next welcome says the parent applied the first only.
      link.ws.terminate();
      const again = await fake.link();
      const resent: typeof ups = [];
      again.ws.on('message', (d: Buffer) => {
        const m = JSON.parse(d.toString());
        if (m.t === 'up') resent.push(m);
      });
      await again.next('hello');
      again.send({ t: 'welcome', parent: fake.id, up: ups[0]!.to, editable: [] });
      await waitFor(() => resent.length >= 1, { timeoutMs: 5_000, what: 'an up page on the new link' });
      expect(resent[0]!.from).toBe(ups[0]!.to);
      expect(resent[0]!.entries[0]!.s).toBe(ups[1]!.entries[0]!.s);
      again.ws.terminate();
    } finally {
      await fake.close();
    }
  });

  it("the parent sends no page of entries with nothing for the child, but moves the child's cursor past them with a page of none, at most once a second", async () => {
    const { parent, url } = await listeningParent();
    const rogue = await rogueChild(parent, url);
    const head = async () => ((await parent.call('GET', '/hierarchy')).body.children as Array<{ id: string; lag: number }>).find((x) => x.id === rogue.id)!;
    try {
      const c = await openLink(url, rogue);
      const start = (await head()).lag;
      c.ws.send(JSON.stringify({ t: 'hello', down: start, name: 'rogue' }));
      await waitFor(() => c.messages.some((m) => m.t === 'welcome'), { timeoutMs: 3_000, what: 'welcome' });
      // Agent tokens: writes of the parent that do not go down.
      for (let i = 0; i < 6; i++) await createToken(parent, 'agent');
      // The head now (a child that acked nothing lags by all of it).
      const target = (await head()).lag;
      expect(target).toBeGreaterThanOrEqual(start + 6);
      const down = () => c.messages.filter((m) => m.t === 'down') as Array<{ from: number; to: number; entries: unknown[] }>;
      await waitFor(() => down().some((p) => p.to >= target), { timeoutMs: 5_000, what: "a page moving the child's cursor to the head" });
      expect(down().every((p) => p.entries.length === 0)).toBe(true);
      expect(down().length, 'pages of none for six writes').toBeLessThanOrEqual(2);
      for (const [i, p] of down().entries()) expect(p.from).toBe(i === 0 ? start : down()[i - 1]!.to);
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it('a complete copy from the parent: parts, then the pages after it without waiting for its ack', async () => {
    const { parent, url } = await listeningParent({ batch: 5 });
    const names = Array.from({ length: 12 }, (_, i) => `t${i}`);
    for (const name of names) expect((await parent.call('POST', '/tasks', { body: task(name) })).status).toBe(201);
    const rogue = await rogueChild(parent, url);
    try {
      const c = await openLink(url, rogue);
      c.ws.send(JSON.stringify({ t: 'hello', down: 0, full: true, name: 'rogue' }));
      const down = () => c.messages.filter((m) => m.t === 'down') as Array<{ from?: number; to: number; snapshot: boolean; done: boolean; entries: Array<{ o: Array<{ k: string }> }> }>;
      await waitFor(() => down().some((p) => p.snapshot && p.done), { timeoutMs: 5_000, what: 'the last part of the copy' });
      const parts = down();
      expect(parts.length).toBeGreaterThan(2);
      expect(parts.every((p) => p.snapshot && p.to === parts[0]!.to)).toBe(true);
      const keys = new Set(parts.flatMap((p) => p.entries.flatMap((e) => e.o.map((op) => op.k))));
      expect(names.filter((n) => !keys.has(`!task-defs!${n}`))).toEqual([]);
      expect((await parent.call('POST', '/tasks', { body: task('after') })).status).toBe(201);
      const next = await waitFor(() => down().find((p) => !p.snapshot), { timeoutMs: 5_000, what: 'the page after the copy' });
      expect(next.from).toBe(parts[0]!.to);
      expect(JSON.stringify(next.entries)).toContain('!task-defs!after');
      c.ws.close();
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it('the parent applies up pages sent back to back, and refuses one after a gap: nothing of it is written and the link is closed', async () => {
    const { parent, url } = await listeningParent();
    const rogue = await rogueChild(parent, url);
    const agent = (s: number, id: string) => upAgent(rogue.id, s, id, id);
    const ids = async () => ((await parent.call('GET', `/hierarchy/agents?core=${rogue.id}`)).body.items as Array<{ id: string }>).map((a) => a.id).sort();
    try {
      const c = await openLink(url, rogue);
      c.ws.send(JSON.stringify({ t: 'hello', down: 0, name: 'rogue' }));
      await waitFor(() => c.messages.some((m) => m.t === 'welcome'), { timeoutMs: 3_000, what: 'welcome' });
      c.ws.send(JSON.stringify({ t: 'up', from: 0, to: 1, entries: [agent(1, 'ag_1')] }));
      c.ws.send(JSON.stringify({ t: 'up', from: 1, to: 3, entries: [agent(3, 'ag_3')] }));
      await waitFor(() => c.messages.some((m) => m.t === 'ack' && m.up === 3), { timeoutMs: 3_000, what: 'ack 3' });
      expect(c.messages.filter((m) => m.t === 'ack').map((m) => m.up)).toEqual([1, 3]);
      // Seqs 4 and 5 never came: a page after 5 is not applied.
      const closed = closedWithin(c.ws, 5_000, 'the link of a page after a gap');
      c.ws.send(JSON.stringify({ t: 'up', from: 5, to: 6, entries: [agent(6, 'ag_6')] }));
      expect(await closed).toBe(1008);
      expect(await ids()).toEqual(['ag_1', 'ag_3']);
      const view = ((await parent.call('GET', '/hierarchy')).body.children as Array<{ id: string; upApplied: number; lastError: string }>).find((x) => x.id === rogue.id)!;
      expect(view.upApplied).toBe(3);
      expect(view.lastError).toMatch(/gap/);
    } finally {
      await removeDir(rogue.dir);
    }
  });

  it("an item of the parent changed again, or deleted and made again within one page, stays the parent's (read-only on the child)", async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST } } });
      const { link } = await welcomed(fake, child);
      const def = (s: number, name: string, arg: string) => ({ s, o: [{ k: `!task-defs!${name}`, v: JSON.stringify({ ...task(name), args: [arg], timeoutMs: 60_000, createdAt: 1, updatedAt: 1 }) }] });
      link.send({ t: 'down', entries: [def(1, 'a', 'v1'), def(2, 'b', 'v1')], from: 0, to: 2 });
      expect(await link.next('ack')).toMatchObject({ down: 2 });
      link.send({ t: 'down', entries: [def(3, 'a', 'v2'), { s: 4, o: [{ k: '!task-defs!b' }] }, def(5, 'b', 'v2')], from: 2, to: 5 });
      expect(await link.next('ack')).toMatchObject({ down: 5 });
      for (const name of ['a', 'b']) {
        expect((await child.call('GET', `/tasks/${name}`)).body.args).toEqual(['v2']);
        const r = await child.call('PUT', `/tasks/${name}`, { body: task(name) });
        expect(r.status, name).toBe(409);
        expect(r.body.error.code).toBe('CORE_HIERARCHY_READ_ONLY');
      }
      link.ws.terminate();
    } finally {
      await fake.close();
    }
  });

  it("the child takes a complete copy in parts with a page right behind it: the parent's items it lacks go, its own stay", async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST } } });
      expect((await child.call('POST', '/tasks', { body: task('mine') })).status).toBe(201);
      const { link } = await welcomed(fake, child);
      const op = (name: string) => ({ k: `!task-defs!${name}`, v: JSON.stringify({ ...task(name), timeoutMs: 60_000, createdAt: 1, updatedAt: 1 }) });
      link.send({ t: 'down', entries: [{ s: 1, o: [op('a')] }, { s: 2, o: [op('b')] }], from: 0, to: 2 });
      expect(await link.next('ack')).toMatchObject({ down: 2 });
      // The parent lost b (a copy as of seq 40: a and c), then c2 comes at 41, all sent back to back.
      link.send({ t: 'down', entries: [{ s: 40, o: [op('a')] }], to: 40, snapshot: true, done: false });
      link.send({ t: 'down', entries: [{ s: 40, o: [op('c')] }], to: 40, snapshot: true, done: true });
      link.send({ t: 'down', entries: [{ s: 41, o: [op('c2')] }], from: 40, to: 41 });
      expect(await link.next('ack')).toMatchObject({ down: 40 });
      expect(await link.next('ack')).toMatchObject({ down: 41 });
      expect(await taskNames(child.call)).toEqual(['a', 'c', 'c2', 'mine']);
      link.ws.terminate();
      expect(await (await fake.link()).next('hello')).toMatchObject({ down: 41 });
    } finally {
      await fake.close();
    }
  });

  it('the child applies down pages sent back to back, and refuses one after a gap: nothing of it is applied and the next hello gives the cursor as written', async () => {
    const fake = await fakeParent();
    try {
      const child = await startCore({ config: { hierarchy: { name: 'emea', ...FAST } } });
      const { link, hello } = await welcomed(fake, child);
      expect(hello).toMatchObject({ down: 0 });
      const def = (s: number, name: string) => ({ s, o: [{ k: `!task-defs!${name}`, v: JSON.stringify({ ...task(name), timeoutMs: 60_000, createdAt: 1, updatedAt: 1 }) }] });
      link.send({ t: 'down', entries: [def(1, 'a')], from: 0, to: 1 });
      link.send({ t: 'down', entries: [def(3, 'b')], from: 1, to: 3 });
      expect(await link.next('ack')).toMatchObject({ down: 1 });
      expect(await link.next('ack')).toMatchObject({ down: 3 });
      const closed = closedWithin(link.ws, 5_000, 'the link of a page after a gap');
      link.send({ t: 'down', entries: [def(6, 'c')], from: 5, to: 6 });
      await closed;
      const again = await fake.link();
      expect(await again.next('hello')).toMatchObject({ down: 3 });
      expect(await taskNames(child.call)).toEqual(['a', 'b']);
      expect((await child.call('GET', '/hierarchy')).body.parent.lastError).toMatch(/gap/);
      again.ws.terminate();
    } finally {
      await fake.close();
    }
  });
});

/**
 * A parent core played by the test: its own CA and a link certificate naming its core id,
 * `GET /ca` and `POST /join` answered, and the link WebSocket handed to the test, which
 * speaks the protocol itself.
 */
/** Joins `child` to the fake parent, takes its link, reads its hello and welcomes it from cursor 0. */
async function welcomed(fake: Awaited<ReturnType<typeof fakeParent>>, child: TestCore): Promise<{ link: FakeLink; hello: unknown }> {
  await join(child, fake.url, fake.token);
  const link = await fake.link();
  const hello = await link.next('hello');
  link.send({ t: 'welcome', parent: fake.id, up: 0, editable: [] });
  return { link, hello };
}

async function fakeParent(): Promise<{ id: string; url: string; token: string; link(): Promise<FakeLink>; close(): Promise<void> }> {
  const dir = await tempDir('outpost-fake-parent-');
  const { authority } = await Authority.open(dir, 86_400_000);
  const cert = await issueLinkCert(authority, ['127.0.0.1']);
  const links: WebSocket[] = [];
  let waiting: ((link: FakeLink) => void) | undefined;
  const pending: FakeLink[] = [];
  const wss = new WebSocketServer({ noServer: true });
  const server: Server = createServer({ cert: cert.certPem + authority.certPem, key: cert.keyPem, requestCert: true, rejectUnauthorized: false }, (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.url === '/ca' ? { id: authority.coreId, name: 'fake', caPem: authority.certPem } : { parent: authority.coreId, name: 'fake' }));
    });
  });
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      links.push(ws);
      // Listening from the first byte: the child says hello at once.
      const link = fakeLink(ws);
      if (waiting) waiting(link);
      else pending.push(link);
      waiting = undefined;
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    id: authority.coreId,
    url: `https://127.0.0.1:${port}`,
    token: `hjt_fake1234.${'s'.repeat(24)}.${certificateFingerprint(authority.certPem)}`,
    link: async () => {
      return pending.shift() ?? (await Promise.race([new Promise<FakeLink>((r) => (waiting = r)), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no link in 10 s')), 10_000))]));
    },
    close: async () => {
      for (const ws of links) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await removeDir(dir);
    },
  };
}

interface FakeLink {
  ws: WebSocket;
  send(m: unknown): void;
  /** The next message of type `t` (earlier ones of other types are skipped), within 5 s. */
  next(t: string): Promise<any>;
}

function fakeLink(ws: WebSocket): FakeLink {
  const inbox: any[] = [];
  ws.on('message', (d: Buffer) => inbox.push(JSON.parse(d.toString())));
  return {
    ws,
    send: (m) => ws.send(JSON.stringify(m)),
    next: async (t) => {
      const m = await waitFor(
        () => {
          while (inbox.length && inbox[0].t !== t) inbox.shift();
          return inbox.shift();
        },
        { timeoutMs: 5_000, what: `a '${t}' from the child` },
      );
      return m;
    },
  };
}
